package network

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
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
// network was removed, so nothing outlives the network.
//
// Why a resolver and not a shared hosts file: a hosts file updated in place under every
// container's bind mount is read torn while it is rewritten, and the sandbox generates
// /etc/hosts per container (host files are never bound there); a resolver answers from the same
// records Inspect reads, with nothing written into containers. Docker's embedded DNS lives at
// 127.0.0.11 inside each container's namespace, which needs a process holding a socket in every
// container's namespace; one resolver per network on its gateway needs none.

// ResolverPort is where a network's resolver listens on the gateway.
const ResolverPort = 53

// resolverPoll is how often a resolver checks whether its network still has containers.
const resolverPoll = time.Second

func (m *Manager) resolverLock(tenant, name string) string {
	return filepath.Join(m.tenantDir(tenant), "dns", name+".lock")
}

// lockResolver takes the network's resolver lock without waiting: held means a resolver runs.
func (m *Manager) lockResolver(tenant, name string) (*os.File, bool, error) {
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
// bridge holds the gateway address). Resolver is the command that serves it (ServeResolver);
// without one the network has no resolver.
func (m *Manager) ensureResolver(n *Network) error {
	if len(m.Resolver) == 0 {
		return nil
	}
	f, free, err := m.lockResolver(n.Tenant, n.Name)
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

// ServeResolver is a network's resolver (run by the command Manager.Resolver names): it
// reports "ok" or why not on ready, then answers until the network has no container left.
func (m *Manager) ServeResolver(ctx context.Context, tenant, name string, ready io.WriteCloser) error {
	report := func(err error) error {
		if ready != nil {
			if err != nil {
				fmt.Fprintf(ready, "%v\n", err)
			} else {
				fmt.Fprint(ready, "ok\n")
			}
			ready.Close()
			ready = nil
		}
		return err
	}
	lock, free, err := m.lockResolver(tenant, name)
	if err != nil {
		return report(err)
	}
	if !free {
		return report(nil) // another serves it
	}
	defer lock.Close()
	n, err := m.Inspect(tenant, name)
	if err != nil {
		return report(err)
	}
	addr := netip.AddrPortFrom(n.Gateway, ResolverPort).String()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return report(fmt.Errorf("resolver of network %s: %w", name, err))
	}
	defer pc.Close()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return report(fmt.Errorf("resolver of network %s: %w", name, err))
	}
	defer ln.Close()
	r := &resolver{m: m, n: n}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.serveUDP(pc) }()
	go func() { defer wg.Done(); r.serveTCP(ln) }()
	report(nil)
	defer wg.Wait()
	tick := time.NewTicker(resolverPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		needed, unlock, err := m.resolverNeeded(tenant, name)
		if err != nil {
			return err
		}
		if needed {
			unlock()
			continue
		}
		pc.Close()
		ln.Close()
		lock.Close()
		unlock()
		return nil
	}
}

// resolverNeeded reports whether tenant's network name still exists and has attachments,
// decided under the manager's lock, which the caller releases with unlock once it has acted: an
// Attach either sees the resolver's lock held (and the resolver answers its container) or free
// (and starts another). A state root removed under a running resolver (its network is gone
// with it) is not needed and is not made anew.
func (m *Manager) resolverNeeded(tenant, name string) (needed bool, unlock func(), err error) {
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

// resolver answers one network's names.
type resolver struct {
	m *Manager
	n *Network
}

func (r *resolver) serveUDP(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		k, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if !r.admits(from) {
			continue
		}
		if out := r.answer(buf[:k]); out != nil {
			pc.WriteTo(out, from)
		}
	}
}

func (r *resolver) serveTCP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !r.admits(c.RemoteAddr()) {
			c.Close()
			continue
		}
		go r.serveConn(c)
	}
}

// serveConn answers length-prefixed queries on one connection (RFC 7766) until it idles.
func (r *resolver) serveConn(c net.Conn) {
	defer c.Close()
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		out := r.answer(q)
		if out == nil {
			return
		}
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...)); err != nil {
			return
		}
	}
}

// admits answers only the network's own subnet (the isolation rules already keep every other
// source away; this holds should they be missing).
func (r *resolver) admits(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && r.n.Subnet.Contains(ap.Addr().Unmap())
}

// answer builds the reply to one query, nil for a message that is not one.
func (r *resolver) answer(q []byte) []byte {
	var msg dnsmessage.Message
	if err := msg.Unpack(q); err != nil || msg.Header.Response || len(msg.Questions) != 1 {
		return nil
	}
	question := msg.Questions[0]
	reply := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: msg.Header.ID, Response: true, RecursionDesired: msg.Header.RecursionDesired, OpCode: msg.Header.OpCode},
		Questions: msg.Questions,
	}
	ip, ok := r.lookup(question.Name.String())
	switch {
	case msg.Header.OpCode != 0 || question.Class != dnsmessage.ClassINET:
		reply.Header.RCode = dnsmessage.RCodeNotImplemented
	case !ok:
		// Not a name of this network: this resolver does not recurse.
		reply.Header.RCode = dnsmessage.RCodeRefused
	case question.Type == dnsmessage.TypeA || question.Type == dnsmessage.TypeALL:
		reply.Header.Authoritative = true
		reply.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: question.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 0},
			Body:   &dnsmessage.AResource{A: ip.As4()},
		}}
	default:
		// The name exists with no record of this type (AAAA among them): an empty answer.
		reply.Header.Authoritative = true
	}
	out, err := reply.Pack()
	if err != nil {
		return nil
	}
	return out
}

// lookup finds a container of the network by NAME or NAME.NETWORK (case-insensitive), from the
// attachment records (read at each query: they are small, and never stale).
func (r *resolver) lookup(qname string) (netip.Addr, bool) {
	name := strings.ToLower(strings.TrimSuffix(qname, "."))
	if base, ok := strings.CutSuffix(name, "."+r.n.Name); ok {
		name = base
	}
	atts, err := r.m.attachments(r.n.Tenant)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range atts {
		if a.Network != r.n.Name || !a.IP.IsValid() {
			continue
		}
		if strings.ToLower(a.Container) == name || slices.ContainsFunc(a.Aliases, func(al string) bool { return strings.ToLower(al) == name }) {
			return a.IP, true
		}
	}
	return netip.Addr{}, false
}
