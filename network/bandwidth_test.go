package network

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]uint64{
		"1mbit": 1e6, "1M": 1e6, "500k": 5e5, "500KBIT": 5e5, "2g": 2e9, "8000": 8000, "8000bit": 8000, " 3m ": 3e6,
	} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "1.5m", "-1m", "1mb", "1 mbit/s", "0", "0k", "99g", "18446744073709551616"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseNetworkRate(t *testing.T) {
	b, err := ParseNetworkRate("1mbit")
	if err != nil || b.IngressRate != 1e6 || b.EgressRate != 1e6 || b.IngressBurst != MinBurst || b.EgressBurst != MinBurst {
		t.Errorf("1mbit: %+v, %v", b, err)
	}
	b, err = ParseNetworkRate("egress=800m")
	if err != nil || b.IngressRate != 0 || b.IngressBurst != 0 || b.EgressRate != 8e8 || b.EgressBurst != 1e8 {
		t.Errorf("egress=800m: %+v, %v", b, err)
	}
	b, err = ParseNetworkRate("ingress=2m,egress=1m")
	if err != nil || b.IngressRate != 2e6 || b.EgressRate != 1e6 || b.String() != "ingress 2000000 bit/s, egress 1000000 bit/s" {
		t.Errorf("ingress=2m,egress=1m: %+v, %v", b, err)
	}
	if b, err := ParseNetworkRate(""); b != nil || err != nil {
		t.Errorf("empty: %+v, %v", b, err)
	}
	for _, in := range []string{"up=1m", "ingress=", "ingress=1m,", "ingress=fast"} {
		if _, err := ParseNetworkRate(in); err == nil || !strings.Contains(err.Error(), "--network-rate") {
			t.Errorf("ParseNetworkRate(%q): %v, want an error naming the flag", in, err)
		}
	}
}

func TestWithBandwidth(t *testing.T) {
	m := New(t.TempDir())
	raw, err := m.confList(&Network{Tenant: "t", Name: "n", Bridge: "bw0"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := withBandwidth(raw)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Type         string          `json:"type"`
			Capabilities map[string]bool `json:"capabilities"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(out, &conf); err != nil {
		t.Fatal(err)
	}
	last := conf.Plugins[len(conf.Plugins)-1]
	if last.Type != "bandwidth" || !last.Capabilities["bandwidth"] {
		t.Errorf("plugins %+v", conf.Plugins)
	}
}
