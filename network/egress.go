package network

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Egress modes, narrowest first: what a container may open connections to. Whatever the mode,
// the isolation rules (firewall.go) keep every container away from other networks, the host's
// own services and 169.254.0.0/16; a mode only narrows further.
const (
	// EgressNone: nothing, not even its network's containers or resolver (it still answers
	// what connects to it: published ports, its network's containers).
	EgressNone = "none"
	// EgressNetwork: its network's containers and resolver only.
	EgressNetwork = "network"
	// EgressAllowlist: its network, and the destinations Egress.Allow lists.
	EgressAllowlist = "allowlist"
	// EgressAny: its network and anything the host routes to (masqueraded).
	EgressAny = "any"
)

// EgressModes are the modes, narrowest first.
var EgressModes = []string{EgressNone, EgressNetwork, EgressAllowlist, EgressAny}

// Egress is what one container may open connections to.
type Egress struct {
	Mode string `json:"mode"`
	// Allow are the destinations of an allowlist.
	Allow []EgressRule `json:"allow,omitempty"`
}

// EgressRule is one allowlisted destination: an IPv4 prefix, a protocol ("" for any) and a
// port range (0 for every port; only with a protocol).
type EgressRule struct {
	CIDR     netip.Prefix `json:"cidr"`
	Protocol string       `json:"protocol,omitempty"`
	FromPort int          `json:"fromPort,omitempty"`
	ToPort   int          `json:"toPort,omitempty"`
}

// String is the rule in ParseEgress's form, PROTO:CIDR[:PORT[-PORT]] (PROTO "any" for any).
func (r EgressRule) String() string {
	proto := r.Protocol
	if proto == "" {
		proto = "any"
	}
	s := proto + ":" + r.CIDR.String()
	switch {
	case r.FromPort == 0:
	case r.FromPort == r.ToPort:
		s += ":" + strconv.Itoa(r.FromPort)
	default:
		s += fmt.Sprintf(":%d-%d", r.FromPort, r.ToPort)
	}
	return s
}

// String is the mode, an allowlist followed by its rules.
func (e Egress) String() string {
	if e.Mode != EgressAllowlist {
		return e.Mode
	}
	rules := make([]string, len(e.Allow))
	for i, r := range e.Allow {
		rules[i] = r.String()
	}
	return EgressAllowlist + " " + strings.Join(rules, ",")
}

// ParseEgress reads --egress values: one mode (none, network, any), or allowlist entries
// [tcp:|udp:|any:]CIDR[:PORT[-PORT]] (an address alone is a /32; ports without a protocol are
// tcp's; no protocol and no port is every protocol and port). Anything else is refused.
func ParseEgress(values []string) (Egress, error) {
	var e Egress
	for _, v := range values {
		switch v {
		case EgressNone, EgressNetwork, EgressAny:
			if len(values) != 1 {
				return Egress{}, fmt.Errorf("egress %s: a mode stands alone (got %s)", v, strings.Join(values, ", "))
			}
			return Egress{Mode: v}, nil
		}
		r, err := parseEgressRule(v)
		if err != nil {
			return Egress{}, fmt.Errorf("egress %q: %w (want none, network, any or [tcp:|udp:]CIDR[:PORT[-PORT]])", v, err)
		}
		e.Mode, e.Allow = EgressAllowlist, append(e.Allow, r)
	}
	if e.Mode == "" {
		return Egress{}, fmt.Errorf("egress: nothing given")
	}
	return e, nil
}

func parseEgressRule(v string) (EgressRule, error) {
	var r EgressRule
	parts := strings.Split(v, ":")
	switch parts[0] {
	case "tcp", "udp":
		r.Protocol, parts = parts[0], parts[1:]
	case "any":
		parts = parts[1:]
	}
	if len(parts) == 0 || len(parts) > 2 {
		return r, fmt.Errorf("malformed")
	}
	p, err := netip.ParsePrefix(parts[0])
	if err != nil {
		a, aerr := netip.ParseAddr(parts[0])
		if aerr != nil {
			return r, fmt.Errorf("%q is not an IPv4 address or prefix", parts[0])
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if !p.Addr().Is4() {
		return r, fmt.Errorf("%s: only IPv4 (the networks have no IPv6)", p)
	}
	r.CIDR = p.Masked()
	if len(parts) == 2 {
		if strings.HasPrefix(v, "any:") {
			return r, fmt.Errorf("ports need a protocol (tcp or udp)")
		}
		if r.Protocol == "" {
			r.Protocol = "tcp"
		}
		from, to, ok := strings.Cut(parts[1], "-")
		if !ok {
			to = from
		}
		if r.FromPort, err = Port(from); err == nil {
			r.ToPort, err = Port(to)
		}
		if err != nil {
			return r, err
		}
		if r.ToPort < r.FromPort {
			return r, fmt.Errorf("port range %s is empty", parts[1])
		}
	}
	return r, nil
}

// Port reads a port number, 1-65535.
func Port(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return n, nil
}

// The egress rules of a container narrower than any, in the filter table beside the isolation
// rules:
//
//	BULWARK-EGRESS (first in FORWARD and in INPUT):
//	  -m physdev --physdev-in VETH -m comment --comment bulwark-egress:TENANT/CONTAINER -j BWE-<hash>
//	BWE-<hash> (one per container; RETURN lets the packet on to the other rules, DROP ends it):
//	  -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN   replies to what connected to it
//	  -o BR -j RETURN                                         its network's containers (not none)
//	  -d GW -p udp|tcp --dport 53 -j RETURN                   its network's resolver (not none)
//	  -d CIDR [-p PROTO [--dport PORTS]] -j RETURN            each allowlisted destination
//	  -j DROP
//
// The container is matched by its host-side veth (the bridge port it sends through, which it
// cannot forge as it could its source address), so the kernel's bridge netfilter hook must be on
// (bridge-nf-call-iptables): without it no rule would see the container's packets, and such a
// container is refused rather than left unrestricted. Both chains only RETURN or DROP, so their
// order against the isolation chain does not matter: a packet must pass all of them.
const chainEgress = "BULWARK-EGRESS"

// egressChain names a container's chain (iptables allows 28 characters).
func egressChain(tenant, container string) string {
	sum := sha256.Sum256([]byte(tenant + "/" + container))
	return "BWE-" + hex.EncodeToString(sum[:])[:16]
}

func egressComment(tenant, container string) string {
	return "bulwark-egress:" + tenant + "/" + container
}

// egressRules are the rules of the chain of a container on n with egress e.
func egressRules(n *Network, e Egress) [][]string {
	rules := [][]string{{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"}}
	if e.Mode != EgressNone {
		gw, dns := n.Gateway.String(), strconv.Itoa(ResolverPort)
		rules = append(rules,
			[]string{"-o", n.Bridge, "-j", "RETURN"},
			[]string{"-d", gw, "-p", "udp", "--dport", dns, "-j", "RETURN"},
			[]string{"-d", gw, "-p", "tcp", "--dport", dns, "-j", "RETURN"})
	}
	for _, r := range e.Allow {
		rule := []string{"-d", r.CIDR.String()}
		if r.Protocol != "" {
			rule = append(rule, "-p", r.Protocol)
		}
		if r.FromPort != 0 {
			rule = append(rule, "--dport", fmt.Sprintf("%d:%d", r.FromPort, r.ToPort))
		}
		rules = append(rules, append(rule, "-j", "RETURN"))
	}
	return append(rules, []string{"-j", "DROP"})
}

// restrictEgress installs the rules of a container whose host-side veth is veth; egress any
// needs none.
func restrictEgress(n *Network, tenant, container, veth string, e Egress) error {
	if e.Mode == EgressAny {
		return nil
	}
	if veth == "" {
		return fmt.Errorf("egress %s: the bridge plugin named no host-side interface for %s", e.Mode, container)
	}
	if b, err := os.ReadFile("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil || strings.TrimSpace(string(b)) != "1" {
		return fmt.Errorf("egress %s cannot be enforced: bridged packets skip iptables here (net.bridge.bridge-nf-call-iptables is not 1; modprobe br_netfilter)", e.Mode)
	}
	if err := ensureJumps(chainEgress); err != nil {
		return err
	}
	chain := egressChain(tenant, container)
	if !exists("-S", chain) {
		if err := iptables("-N", chain); err != nil {
			return err
		}
	}
	if err := iptables("-F", chain); err != nil {
		return err
	}
	for _, r := range egressRules(n, e) {
		if err := iptables(append([]string{"-A", chain}, r...)...); err != nil {
			return err
		}
	}
	jump := []string{"-m", "physdev", "--physdev-in", veth, "-m", "comment", "--comment", egressComment(tenant, container), "-j", chain}
	if exists(append([]string{"-C", chainEgress}, jump...)...) {
		return nil
	}
	return iptables(append([]string{"-A", chainEgress}, jump...)...)
}

// unrestrictEgress removes a container's egress rules (nothing if it has none); the
// BULWARK-EGRESS chain and its jumps go with the last container's.
func unrestrictEgress(tenant, container string) error {
	chain := egressChain(tenant, container)
	if err := deleteJumps("filter", chainEgress, chain); err != nil {
		return err
	}
	if err := removeChain("filter", chain); err != nil {
		return err
	}
	return dropEmptyChain(chainEgress)
}
