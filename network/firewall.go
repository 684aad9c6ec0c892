package network

import (
	"crypto/sha512"
	"encoding/hex"
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

// builtin names the built-in chains that jump to each of Bulwark's chains.
var builtin = map[string][]string{chainForward: {"FORWARD"}, chainInput: {"INPUT"}, chainEgress: {"FORWARD", "INPUT"}}

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

// ensureJumps makes chain and the jumps to it, first in its built-in chains (idempotent).
func ensureJumps(chain string) error {
	if !exists("-S", chain) {
		if err := iptables("-N", chain); err != nil {
			return err
		}
	}
	for _, b := range builtin[chain] {
		if !exists("-C", b, "-j", chain) {
			if err := iptables("-I", b, "1", "-j", chain); err != nil {
				return err
			}
		}
	}
	return nil
}

// dropEmptyChain removes chain and the jumps to it once it holds no rule.
func dropEmptyChain(chain string) error {
	out, err := exec.Command("iptables", "-w", "-t", "filter", "-S", chain).Output()
	if err != nil || strings.Count(string(out), "\n") > 1 {
		return nil // gone, or other rules remain
	}
	for _, b := range builtin[chain] {
		for exists("-C", b, "-j", chain) {
			if err := iptables("-D", b, "-j", chain); err != nil {
				return err
			}
		}
	}
	return iptables("-X", chain)
}

// isolate installs n's rules (idempotent): the chains and their jumps first, then its rules.
func isolate(n *Network) error {
	for chain, rules := range networkRules(n) {
		if err := ensureJumps(chain); err != nil {
			return err
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
		if err := dropEmptyChain(chain); err != nil {
			return err
		}
	}
	return nil
}

// deleteJumps deletes every rule of table's chain from that jumps to chain (by position: CNI's
// rules carry quoted comments iptables -S prints in a form hard to hand back).
func deleteJumps(table, from, chain string) error {
	out, err := exec.Command("iptables", "-w", "-t", table, "-L", from, "-n", "--line-numbers").Output()
	if err != nil {
		return nil // no such chain: nothing jumps from it
	}
	var nums []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == chain {
			nums = append(nums, f[0])
		}
	}
	for i := len(nums) - 1; i >= 0; i-- { // the last first: earlier positions stay valid
		if out, err := exec.Command("iptables", "-w", "-t", table, "-D", from, nums[i]).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables -t %s -D %s %s: %v: %s", table, from, nums[i], err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// removeChain flushes and deletes table's chain, if it exists (nothing may jump to it).
func removeChain(table, chain string) error {
	if exec.Command("iptables", "-w", "-t", table, "-S", chain).Run() != nil {
		return nil
	}
	for _, op := range []string{"-F", "-X"} {
		if out, err := exec.Command("iptables", "-w", "-t", table, op, chain).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables -t %s %s %s: %v: %s", table, op, chain, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// masqChain is the chain CNI's bridge plugin keeps a container's ipMasq rule in
// (FormatChainName of containernetworking/plugins: "CNI-" and the SHA-512 of network name and
// container id, 28 characters in all).
func masqChain(confName, container string) string {
	sum := sha512.Sum512([]byte(confName + container))
	return ("CNI-" + hex.EncodeToString(sum[:]))[:28]
}

// dropMasquerade removes the bridge plugin's ipMasq rule of a container and its chain. The
// plugin's DEL tears them down only for the addresses it finds in the container's namespace,
// which is gone once the container has exited: every rm of a stopped container left them.
func dropMasquerade(confName, container string) error {
	chain := masqChain(confName, container)
	if err := deleteJumps("nat", "POSTROUTING", chain); err != nil {
		return err
	}
	return removeChain("nat", chain)
}
