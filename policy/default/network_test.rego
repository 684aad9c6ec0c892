# Unit tests for the publishing rules (network.rego).
package bulwark.network_test

import data.bulwark.run
import data.bulwark.run_test

on_net := object.union(run_test.base, {"network": {"mode": "private", "name": "web"}})

publishing(ps) := object.union(on_net, {"publish": ps})

grants := object.union(run_test.tenants, {"open": object.union(run_test.tenants.acme, {"publish_addresses": ["127.0.0.1", "0.0.0.0"], "publish_min_port": 80})})

codes(inp) := {r.code | some r in d.reasons} if {
	d := run.decision with input as inp with data.bulwark.tenants as grants
}

test_loopback_high_port_allowed if {
	codes(publishing([{"hostIP": "127.0.0.1", "hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])) == set()
}

test_all_addresses_denied_by_default if {
	codes(publishing([{"hostIP": "0.0.0.0", "hostPort": 8080, "containerPort": 80, "protocol": "tcp"}])) == {"PUBLISH_ADDRESS_NOT_GRANTED"}
}

test_privileged_port_denied_by_default if {
	codes(publishing([{"hostIP": "127.0.0.1", "hostPort": 80, "containerPort": 80, "protocol": "tcp"}])) == {"PUBLISH_PORT_NOT_GRANTED"}
}

test_grants_widen if {
	inp := object.union(publishing([{"hostIP": "0.0.0.0", "hostPort": 80, "containerPort": 80, "protocol": "tcp"}]), {"tenant": "open"})
	codes(inp) == set()
}

test_publish_needs_a_network if {
	inp := object.union(run_test.base, {"publish": [{"hostIP": "127.0.0.1", "hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
	codes(inp) == {"PUBLISH_WITHOUT_NETWORK"}
}
