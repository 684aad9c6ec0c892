package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Per-container rate limits (seed 8.4.5) go through CNI's bandwidth plugin, chained after the
// bridge: a token bucket filter (tc tbf) on the host side of the container's veth shapes what the
// container receives (ingress), and one on an ifb device the veth's ingress is redirected to
// shapes what it sends (egress). The plugin is in an attachment's chain only when it has a
// limit, so attachments without one are exactly as before.

// Bandwidth is a container's rate limits in bits per second (0: none in that direction), in the
// plugin's runtimeConfig form; each burst is derived from its rate (BurstFor).
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// MinBurst is the smallest bucket a limit gets, in bits (64 KiB): a bucket smaller than a
// segment the veth hands over in one piece stalls the flow instead of shaping it.
const MinBurst = 64 << 10 * 8

// MaxRate is the highest rate the plugin can express (tbf keeps rates in bytes per second as a
// 32-bit number).
const MaxRate = (1<<32 - 1) * 8

// BurstFor is the bucket of a rate, in bits: an eighth of a second's traffic, at least MinBurst.
func BurstFor(rate uint64) uint64 {
	return max(rate/8, MinBurst)
}

// NewBandwidth returns the limits for the given rates (bits/s, 0: unlimited), bursts derived.
func NewBandwidth(ingress, egress uint64) (*Bandwidth, error) {
	if ingress == 0 && egress == 0 {
		return nil, nil
	}
	b := &Bandwidth{IngressRate: ingress, EgressRate: egress}
	for _, r := range []uint64{ingress, egress} {
		if r > MaxRate {
			return nil, fmt.Errorf("rate %d bit/s is above the most the bandwidth plugin can shape (%d bit/s)", r, uint64(MaxRate))
		}
	}
	if ingress > 0 {
		b.IngressBurst = BurstFor(ingress)
	}
	if egress > 0 {
		b.EgressBurst = BurstFor(egress)
	}
	return b, nil
}

// rateUnits are the suffixes ParseRate accepts (decimal, as tc and Kubernetes' bandwidth
// annotations: 1mbit = 1M = 1,000,000 bit/s).
var rateUnits = map[string]uint64{
	"": 1, "bit": 1, "k": 1e3, "kbit": 1e3, "m": 1e6, "mbit": 1e6, "g": 1e9, "gbit": 1e9,
}

// ParseRate reads a rate in bits per second: an integer with an optional unit (bit, k or kbit,
// m or mbit, g or gbit; any case), e.g. 1mbit, 500k, 2G.
func ParseRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(t)
	}
	mult, ok := rateUnits[t[i:]]
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if !ok || err != nil || i == 0 {
		return 0, fmt.Errorf("rate %q: want a whole number of bits per second with an optional unit (bit, kbit, mbit, gbit; k, m, g), e.g. 1mbit", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("rate %q: a limit must be above zero (omit it for none)", s)
	}
	if n > MaxRate/mult {
		return 0, fmt.Errorf("rate %q is above the most the bandwidth plugin can shape (%d bit/s)", s, uint64(MaxRate))
	}
	return n * mult, nil
}

// ParseNetworkRate reads `--network-rate`: RATE limits both directions, or a comma-separated
// ingress=RATE and/or egress=RATE limits each (ingress: what the container receives; egress:
// what it sends). Empty means no limit (nil).
func ParseNetworkRate(s string) (*Bandwidth, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if !strings.Contains(s, "=") {
		r, err := ParseRate(s)
		if err != nil {
			return nil, fmt.Errorf("--network-rate: %w", err)
		}
		return NewBandwidth(r, r)
	}
	var in, eg uint64
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		r, err := ParseRate(v)
		if err != nil {
			return nil, fmt.Errorf("--network-rate: %w", err)
		}
		switch strings.TrimSpace(k) {
		case "ingress":
			in = r
		case "egress":
			eg = r
		default:
			return nil, fmt.Errorf("--network-rate: %q: want RATE, or ingress=RATE and/or egress=RATE", part)
		}
	}
	return NewBandwidth(in, eg)
}

// String renders the limits for a record or a message (e.g. "ingress 1000000 bit/s, egress none").
func (b *Bandwidth) String() string {
	if b == nil {
		return "none"
	}
	dir := func(r uint64) string {
		if r == 0 {
			return "none"
		}
		return strconv.FormatUint(r, 10) + " bit/s"
	}
	return "ingress " + dir(b.IngressRate) + ", egress " + dir(b.EgressRate)
}

// withBandwidth appends the bandwidth plugin to a CNI configuration list (raw JSON).
func withBandwidth(raw []byte) ([]byte, error) {
	var conf map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	plugins, ok := conf["plugins"].([]any)
	if !ok {
		return nil, errors.New("cni config: no plugin list")
	}
	conf["plugins"] = append(plugins, map[string]any{"type": "bandwidth", "capabilities": map[string]bool{"bandwidth": true}})
	return json.Marshal(conf)
}
