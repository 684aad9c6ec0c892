# Unit tests for network rate limits (bandwidth.rego).
package bulwark.bandwidth_test

import data.bulwark.run
import data.bulwark.run_test

on_net := object.union(run_test.base, {"network": {"mode": "private", "name": "web"}})

limited(ing, eg) := object.union(on_net, {"bandwidth": {"ingressRate": ing, "egressRate": eg}})

capped := object.union(run_test.tenants, {"acme": object.union(run_test.tenants.acme, {"max_network_rate": 10000000})})

decide(inp, tenants) := d if {
	d := run.decision with input as inp with data.bulwark.tenants as tenants
}

codes(inp, tenants) := {r.code | some r in decide(inp, tenants).reasons}

test_within_max_allowed if {
	codes(limited(1000000, 10000000), capped) == set()
}

test_above_max_denied_per_direction if {
	d := decide(limited(20000000, 1000000), capped)
	[r] := d.reasons
	r.code == "NETWORK_RATE_ABOVE_MAX"
	r.path == "bandwidth.ingressRate"
	codes(limited(0, 10000001), capped) == {"NETWORK_RATE_ABOVE_MAX"}
}

test_max_is_a_constraint if {
	decide(on_net, capped).constraints.maxNetworkRate == 10000000
	not decide(on_net, run_test.tenants).constraints.maxNetworkRate
}

test_no_max_any_rate if {
	codes(limited(30000000000, 0), run_test.tenants) == set()
}

test_rate_without_network_denied if {
	codes(object.union(run_test.base, {"bandwidth": {"ingressRate": 1000, "egressRate": 0}}), run_test.tenants) == {"NETWORK_RATE_WITHOUT_NETWORK"}
}

test_bad_max_fails_closed if {
	bad := object.union(run_test.tenants, {"acme": object.union(run_test.tenants.acme, {"max_network_rate": "fast"})})
	"TENANT_CONFIG_INVALID" in codes(on_net, bad)
}
