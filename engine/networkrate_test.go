package engine

import (
	"strings"
	"testing"

	"bulwark.dev/bulwark/network"
	"bulwark.dev/bulwark/policy"
)

func TestNetworkRateDecided(t *testing.T) {
	if b, err := requestBandwidth("", ""); b != nil || err != nil {
		t.Errorf("no rate, no network: %+v %v", b, err)
	}
	if _, err := requestBandwidth("", "1mbit"); err == nil || !strings.Contains(err.Error(), "attaches to none") {
		t.Errorf("a rate without a network: %v", err)
	}
	asked, err := requestBandwidth("web", "egress=1mbit")
	if err != nil || *asked != (policy.Bandwidth{EgressRate: 1e6}) {
		t.Fatalf("egress=1mbit: %+v %v", asked, err)
	}
	max := int64(5e6)
	capped := policy.Constraints{MaxNetworkRate: &max}
	for _, c := range []struct {
		name    string
		network string
		asked   *policy.Bandwidth
		c       policy.Constraints
		want    *network.Bandwidth
	}{
		{"no network", "", asked, capped, nil},
		{"no limit, no maximum", "web", nil, policy.Constraints{}, nil},
		{"as asked", "web", asked, policy.Constraints{}, &network.Bandwidth{EgressRate: 1e6, EgressBurst: network.MinBurst}},
		{"the unset direction gets the maximum", "web", asked, capped, &network.Bandwidth{IngressRate: 5e6, IngressBurst: network.BurstFor(5e6), EgressRate: 1e6, EgressBurst: network.MinBurst}},
		{"none asked: the maximum both ways", "web", nil, capped, &network.Bandwidth{IngressRate: 5e6, IngressBurst: network.BurstFor(5e6), EgressRate: 5e6, EgressBurst: network.BurstFor(5e6)}},
	} {
		got, err := decidedBandwidth(c.network, c.asked, c.c)
		if err != nil || (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
	}
	bad := int64(0)
	if _, err := decidedBandwidth("web", nil, policy.Constraints{MaxNetworkRate: &bad}); err == nil {
		t.Error("a zero maxNetworkRate constraint is accepted")
	}
}
