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

# ---- egress ----

egress_grants := object.union(run_test.tenants, {
	"closed": object.union(run_test.tenants.acme, {"egress": "network"}),
	"listed": object.union(run_test.tenants.acme, {"egress": "allowlist", "egress_allow": [
		{"cidr": "10.1.0.0/16", "protocol": "tcp", "ports": "8000-8999"},
		{"cidr": "192.0.2.7/32"},
	]}),
	"broken": object.union(run_test.tenants.acme, {"egress": "everything"}),
})

egress(tenant, e) := d if {
	inp := object.union(on_net, {"tenant": tenant, "egress": e})
	d := run.decision with input as inp with data.bulwark.tenants as egress_grants
}

egress_codes(tenant, e) := {r.code | some r in egress(tenant, e).reasons}

rule(cidr, proto, from, to) := {"cidr": cidr, "protocol": proto, "fromPort": from, "toPort": to}

test_egress_any_by_default if {
	egress_codes("acme", {"mode": "any"}) == set()
	egress("acme", {"mode": "default"}).constraints.egress == ["any"]
}

test_egress_narrower_than_granted if {
	egress_codes("closed", {"mode": "none"}) == set()
	egress_codes("closed", {"mode": "network"}) == set()
	egress_codes("closed", {"mode": "any"}) == {"EGRESS_NOT_GRANTED"}
	egress_codes("closed", {"mode": "allowlist", "allow": [rule("10.0.0.0/8", "any", 1, 65535)]}) == {"EGRESS_NOT_GRANTED"}
	egress("closed", {"mode": "default"}).constraints.egress == ["network"]
}

test_egress_allowlist_within_grants if {
	egress_codes("listed", {"mode": "allowlist", "allow": [rule("10.1.2.3/32", "tcp", 8080, 8080), rule("192.0.2.7/32", "udp", 53, 53)]}) == set()
	egress_codes("listed", {"mode": "allowlist", "allow": [rule("10.1.2.3/32", "tcp", 22, 22)]}) == {"EGRESS_DESTINATION_NOT_GRANTED"}
	egress_codes("listed", {"mode": "allowlist", "allow": [rule("10.1.2.3/32", "udp", 8080, 8080)]}) == {"EGRESS_DESTINATION_NOT_GRANTED"}
	egress_codes("listed", {"mode": "allowlist", "allow": [rule("10.0.0.0/8", "tcp", 8080, 8080)]}) == {"EGRESS_DESTINATION_NOT_GRANTED"}
	egress_codes("listed", {"mode": "any"}) == {"EGRESS_NOT_GRANTED"}
	egress("listed", {"mode": "default"}).constraints.egress == ["tcp:10.1.0.0/16:8000-8999", "any:192.0.2.7/32"]
}

test_egress_grant_invalid_fails_closed if {
	egress_codes("broken", {"mode": "none"}) == {"EGRESS_GRANT_INVALID"}
}
