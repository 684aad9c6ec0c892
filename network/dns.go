package network

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Containers of one network find each other by name through the network's resolver: a small
// DNS server on the network's gateway address, port 53 (UDP and TCP), in the namespace the
// plugins run in (the host's), and the containers' /etc/resolv.conf names the gateway. It
// answers the names of the network's own containers (NAME and NAME.NETWORK) from the attachment
// records, and refuses every other name (it does not recurse). Another network's containers
// cannot reach it (the isolation rules admit port 53 of a gateway only from its own bridge) and
// it answers only sources inside its network's subnet. It runs while the network has attached
// containers: Attach starts it, and it exits by itself once the last container detached or the
// network was removed, so nothing outlives the network. Package network/resolver serves it.
//
// Why a resolver and not a shared hosts file: a hosts file updated in place under every
// container's bind mount is read torn while it is rewritten, and the sandbox generates
// /etc/hosts per container (host files are never bound there); a resolver answers from the same
// records Inspect reads, with nothing written into containers. Docker's embedded DNS lives at
// 127.0.0.11 inside each container's namespace, which needs a process holding a socket in every
// container's namespace; one resolver per network on its gateway needs none.

// ResolverPort is where a network's resolver listens on the gateway.
const ResolverPort = 53

func (m *Manager) resolverLock(tenant, name string) string {
	return filepath.Join(m.tenantDir(tenant), "dns", name+".lock")
}

// LockResolver takes the network's resolver lock without waiting: held means a resolver runs.
func (m *Manager) LockResolver(tenant, name string) (*os.File, bool, error) {
	p := m.resolverLock(tenant, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, false, fmt.Errorf("resolver lock: %w", err)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("resolver lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("resolver lock: %w", err)
	}
	return f, true, nil
}

// ensureResolver starts n's resolver unless one runs (under the manager's lock, after the
// bridge holds the gateway address). Resolver is the command that serves it (network/resolver.Serve);
// without one the network has no resolver.
func (m *Manager) ensureResolver(n *Network) error {
	if len(m.Resolver) == 0 {
		return nil
	}
	f, free, err := m.LockResolver(n.Tenant, n.Name)
	if err != nil || !free {
		return err
	}
	f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(m.Resolver[0], append(append([]string{}, m.Resolver[1:]...), n.Tenant, n.Name)...)
	cmd.ExtraFiles = []*os.File{w}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start the resolver of network %s: %w", n.Name, err)
	}
	go cmd.Wait() // reaps it if it exits while this process still runs
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, _ := bufio.NewReader(r).ReadString('\n')
	if line != "ok\n" {
		return fmt.Errorf("the resolver of network %s did not start: %s", n.Name, strings.TrimSpace(line))
	}
	return nil
}

// ResolverNeeded reports whether tenant's network name still exists and has attachments,
// decided under the manager's lock, which the caller releases with unlock once it has acted: an
// Attach either sees the resolver's lock held (and the resolver answers its container) or free
// (and starts another). A state root removed under a running resolver (its network is gone
// with it) is not needed and is not made anew.
func (m *Manager) ResolverNeeded(tenant, name string) (needed bool, unlock func(), err error) {
	unlock, err = m.lockExisting()
	if errors.Is(err, fs.ErrNotExist) {
		return false, func() {}, nil
	}
	if err != nil {
		return false, nil, err
	}
	n, err := m.Inspect(tenant, name)
	return err == nil && len(n.Containers) > 0, unlock, nil
}

// Lookup finds a container of network n by NAME or NAME.NETWORK (case-insensitive), or one of
// its aliases, from the attachment records (read at each query: they are small, and never
// stale).
func (m *Manager) Lookup(n *Network, qname string) (netip.Addr, bool) {
	name := strings.ToLower(strings.TrimSuffix(qname, "."))
	if base, ok := strings.CutSuffix(name, "."+n.Name); ok {
		name = base
	}
	atts, err := m.attachments(n.Tenant)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range atts {
		if a.Network != n.Name || !a.IP.IsValid() {
			continue
		}
		if strings.ToLower(a.Container) == name || slices.ContainsFunc(a.Aliases, func(al string) bool { return strings.ToLower(al) == name }) {
			return a.IP, true
		}
	}
	return netip.Addr{}, false
}
