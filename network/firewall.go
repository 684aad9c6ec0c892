package network

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// The rules that keep networks apart and away from the host, in the filter table of the
// namespace the plugins run in (the host's): CNI's bridge plugin has no isolation of its own, and
// the firewall plugin only admits traffic. Each network adds its rules on first attach and drops
// them with the network.
//
//	BULWARK-ISOLATION (first in FORWARD):
//	  -i BR -o BR -j RETURN               its own bridge (br_netfilter sends it here too)
//	  -i BR -o bw+ -j DROP                any other network's bridge, of any tenant
//	  -i BR -d 169.254.0.0/16 -j DROP     link-local services (cloud metadata)
//	BULWARK-INPUT (first in INPUT):
//	  -i BR -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN   replies (published ports)
//	  -i BR -d GW -p udp|tcp --dport 53 -j RETURN   the network's own resolver (dns.go)
//	  -i BR -j DROP                       the host's own services, through the gateway or any address
const (
	chainForward = "BULWARK-ISOLATION"
	chainInput   = "BULWARK-INPUT"
)

func networkRules(n *Network) map[string][][]string {
	br, gw, dns := n.Bridge, n.Gateway.String(), strconv.Itoa(ResolverPort)
	return map[string][][]string{
		chainForward: {
			{"-i", br, "-o", br, "-j", "RETURN"},
			{"-i", br, "-o", "bw+", "-j", "DROP"},
			{"-i", br, "-d", "169.254.0.0/16", "-j", "DROP"},
		},
		chainInput: {
			{"-i", br, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
			{"-i", br, "-d", gw, "-p", "udp", "--dport", dns, "-j", "RETURN"},
			{"-i", br, "-d", gw, "-p", "tcp", "--dport", dns, "-j", "RETURN"},
			{"-i", br, "-j", "DROP"},
		},
	}
}

var builtin = map[string]string{chainForward: "FORWARD", chainInput: "INPUT"}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "-t", "filter"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func exists(args ...string) bool {
	return exec.Command("iptables", append([]string{"-w", "-t", "filter"}, args...)...).Run() == nil
}

// isolate installs n's rules (idempotent): the chains and their jumps first, then its rules.
func isolate(n *Network) error {
	for chain, rules := range networkRules(n) {
		if !exists("-S", chain) {
			if err := iptables("-N", chain); err != nil {
				return err
			}
		}
		if !exists("-C", builtin[chain], "-j", chain) {
			if err := iptables("-I", builtin[chain], "1", "-j", chain); err != nil {
				return err
			}
		}
		for _, r := range rules {
			if exists(append([]string{"-C", chain}, r...)...) {
				continue
			}
			// Exceptions go first and drops last, whichever network added its rules first
			// (and whatever rules an older version installed).
			add := []string{"-A", chain}
			if r[len(r)-1] == "RETURN" {
				add = []string{"-I", chain, "1"}
			}
			if err := iptables(append(add, r...)...); err != nil {
				return err
			}
		}
	}
	return nil
}

// unisolate removes n's rules; the chains and their jumps go with the last network's.
func unisolate(n *Network) error {
	for chain, rules := range networkRules(n) {
		if !exists("-S", chain) {
			continue
		}
		for _, r := range rules {
			for exists(append([]string{"-C", chain}, r...)...) {
				if err := iptables(append([]string{"-D", chain}, r...)...); err != nil {
					return err
				}
			}
		}
		out, err := exec.Command("iptables", "-w", "-t", "filter", "-S", chain).Output()
		if err != nil || strings.Count(string(out), "\n") > 1 {
			continue // other networks' rules remain
		}
		for exists("-C", builtin[chain], "-j", chain) {
			if err := iptables("-D", builtin[chain], "-j", chain); err != nil {
				return err
			}
		}
		if err := iptables("-X", chain); err != nil {
			return err
		}
	}
	return nil
}
