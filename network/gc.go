package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// Nothing a container held on the host outlives it. A runtime killed at any step leaves at most
// an attachment record (written before CNI ADD) and what the plugins made since; Collect undoes
// it for every container the caller says is gone, then sweeps what no record names any more
// (leases, egress and masquerade rules of this state root's networks). Prune removes the
// networks no container uses.

// Collected is what one Collect released.
type Collected struct {
	// Containers are the attachments detached (CNI DEL: lease, port mappings, masquerade,
	// egress rules).
	Containers []string `json:"containers,omitempty"`
	// Leases, Rules are what no attachment named any more: address leases and host rules.
	Leases []string `json:"leases,omitempty"`
	Rules  []string `json:"rules,omitempty"`
}

// Collect detaches every attachment, of every tenant, whose container live says is gone (no
// record, or no process: stopped), then, with sweep, removes the leases and the egress and
// masquerade rules of this state root's networks that no attachment names.
func (m *Manager) Collect(ctx context.Context, live func(tenant, container string) bool, sweep bool) (*Collected, error) {
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := &Collected{}
	tenants, err := m.tenants()
	if err != nil {
		return nil, err
	}
	var errs []error
	attached := map[string]bool{} // tenant/container, after the detaches
	for _, t := range tenants {
		atts, err := m.attachments(t)
		if err != nil {
			return nil, err
		}
		for _, a := range atts {
			if live(t, a.Container) {
				attached[t+"/"+a.Container] = true
				continue
			}
			if err := m.del(ctx, t, a); err != nil {
				errs = append(errs, err)
				attached[t+"/"+a.Container] = true
				continue
			}
			out.Containers = append(out.Containers, t+"/"+a.Container)
		}
	}
	if sweep {
		leases, err := m.sweepLeases(tenants, attached)
		out.Leases, errs = leases, append(errs, err)
		rules, err := m.sweepRules(tenants, attached)
		out.Rules, errs = rules, append(errs, err)
	}
	return out, errors.Join(errs...)
}

func (m *Manager) tenants() ([]string, error) {
	ents, err := os.ReadDir(m.Dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("networks: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// sweepLeases removes host-local's lease files (<ipam>/<network>/<cni name>/<address>, holding
// the container id) of containers with no attachment.
func (m *Manager) sweepLeases(tenants []string, attached map[string]bool) ([]string, error) {
	var out []string
	for _, t := range tenants {
		files, _ := filepath.Glob(filepath.Join(m.tenantDir(t), "ipam", "*", "*", "*"))
		for _, f := range files {
			if _, err := netip.ParseAddr(filepath.Base(f)); err != nil {
				continue // host-local's lock and last_reserved_ip files
			}
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			id, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
			if attached[t+"/"+strings.TrimSpace(id)] {
				continue
			}
			if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
				return out, fmt.Errorf("sweep lease %s: %w", f, err)
			}
			out = append(out, t+"/"+filepath.Base(f))
		}
	}
	return out, nil
}

var (
	egressCommentRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`--comment "?bulwark-egress:([^/"\s]+)/([^"\s]+)"? -j (BWE-[0-9a-f]+)`)
	})
	masqCommentRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`name: \\"(bulwark-[^\\]+)\\" id: \\"([^\\]+)\\"" -j (CNI-[0-9a-f]+)`)
	})
)

// sweepRules removes the egress chains and the bridge plugin's masquerade rules of this state
// root's tenants' containers that have no attachment (a rule of another state root's tenant is
// left alone).
func (m *Manager) sweepRules(tenants []string, attached map[string]bool) ([]string, error) {
	var out []string
	ours := map[string]string{} // CNI network name -> tenant
	for _, t := range tenants {
		ns, err := m.list(t)
		if err != nil {
			return out, err
		}
		for _, n := range ns {
			ours["bulwark-"+n.Tenant+"-"+n.Name] = t
		}
	}
	known := map[string]bool{}
	for _, t := range tenants {
		known[t] = true
	}
	rules, _ := exec.Command("iptables", "-w", "-t", "filter", "-S", chainEgress).Output()
	for _, mt := range egressCommentRE().FindAllStringSubmatch(string(rules), -1) {
		tenant, container, chain := mt[1], mt[2], mt[3]
		if !known[tenant] || attached[tenant+"/"+container] || chain != egressChain(tenant, container) {
			continue
		}
		if err := unrestrictEgress(tenant, container); err != nil {
			return out, err
		}
		out = append(out, "filter "+chain+" ("+tenant+"/"+container+")")
	}
	rules, _ = exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	for _, mt := range masqCommentRE().FindAllStringSubmatch(string(rules), -1) {
		conf, container, chain := mt[1], mt[2], mt[3]
		tenant, ok := ours[conf]
		if !ok || attached[tenant+"/"+container] || chain != masqChain(conf, container) {
			continue
		}
		if err := dropMasquerade(conf, container); err != nil {
			return out, err
		}
		out = append(out, "nat "+chain+" ("+tenant+"/"+container+")")
	}
	return out, nil
}

// Prune removes tenant's networks no container is attached to (the default network too: it
// is made again on first use), with their bridges and rules; it returns their names.
func (m *Manager) Prune(tenant string) ([]string, error) {
	ns, err := m.List(tenant)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range ns {
		if len(n.Containers) > 0 {
			continue
		}
		if err := m.Remove(tenant, n.Name); err != nil {
			if errors.Is(err, ErrInUse) {
				continue // attached since
			}
			return out, err
		}
		out = append(out, n.Name)
	}
	return out, nil
}
