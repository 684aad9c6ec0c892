package bulwark.api_test

import data.bulwark.api

test_own_container_allowed if {
	api.decision.allow with input as {"tenant": "a", "operation": "container.logs", "target": {"kind": "container", "id": "x", "owner": "a"}}
}

test_other_tenant_refused if {
	d := api.decision with input as {"tenant": "a", "operation": "container.logs", "target": {"kind": "container", "id": "x", "owner": "b"}}
	not d.allow
	d.reasons[_].code == "CROSS_TENANT"
}

test_operator_crosses if {
	api.decision.allow with input as {"tenant": "", "operator": true, "operation": "container.kill", "target": {"owner": "b"}}
}

test_unknown_operation_refused if {
	not api.decision.allow with input as {"tenant": "a", "operation": "container.teleport"}
}

test_no_tenant_refused_but_ping if {
	not api.decision.allow with input as {"operation": "container.list"}
	api.decision.allow with input as {"operation": "system.ping"}
}

test_empty_input_refused if {
	not api.decision.allow with input as {}
}

test_denied_operation if {
	d := api.decision with input as {"tenant": "a", "operation": "container.exec"}
		with data.bulwark.api_tenants as {"a": {"denied_operations": ["container.exec"]}}
	not d.allow
	d.reasons[_].code == "OPERATION_NOT_GRANTED"
}

test_bulwark_endpoints_known if {
	every op in ["bulwark.decide", "bulwark.trust", "bulwark.audit", "bulwark.audit.verify"] {
		api.decision.allow with input as {"tenant": "a", "operation": op}
	}
}

test_bulwark_endpoints_need_a_tenant if {
	d := api.decision with input as {"operation": "bulwark.audit"}
	not d.allow
	d.reasons[_].code == "TENANT_UNKNOWN"
}

test_bulwark_audit_withheld if {
	d := api.decision with input as {"tenant": "a", "operation": "bulwark.audit"}
		with data.bulwark.api_tenants as {"a": {"denied_operations": ["bulwark.audit", "bulwark.audit.verify"]}}
	not d.allow
	d.reasons[_].code == "OPERATION_NOT_GRANTED"
}

test_own_network_and_volume_allowed if {
	api.decision.allow with input as {"tenant": "a", "operation": "network.remove", "target": {"kind": "network", "id": "n", "owner": "a"}}
	api.decision.allow with input as {"tenant": "a", "operation": "volume.create"}
}

test_other_tenants_volume_refused if {
	d := api.decision with input as {"tenant": "a", "operation": "volume.remove", "target": {"kind": "volume", "id": "v", "owner": "b"}}
	not d.allow
	d.reasons[_].code == "CROSS_TENANT"
}

test_network_create_withheld if {
	d := api.decision with input as {"tenant": "a", "operation": "network.create"}
		with data.bulwark.api_tenants as {"a": {"denied_operations": ["network.create"]}}
	not d.allow
	d.reasons[_].code == "OPERATION_NOT_GRANTED"
}
