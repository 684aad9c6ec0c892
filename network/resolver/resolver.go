// Package resolver is a network's resolver (package network's dns.go says what it answers and
// why it exists): the DNS server the command network.Manager.Resolver names runs. It is apart
// from package network so that the bulwark CLI, started for every run, links no DNS message
// parser: bulwark-admin (and bulwarkd) serve it.
package resolver

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"bulwark.dev/bulwark/network"
)

// poll is how often a resolver checks whether its network still has containers.
const poll = time.Second

// Serve is the resolver of tenant's network name in the state root's networks: it reports "ok"
// or why not on ready, then answers until the network has no container left.
func Serve(ctx context.Context, stateRoot, tenant, name string, ready io.WriteCloser) error {
	m := network.New(stateRoot)
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
	lock, free, err := m.LockResolver(tenant, name)
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
	addr := netip.AddrPortFrom(n.Gateway, network.ResolverPort).String()
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
	r := &resolver{subnet: n.Subnet, lookup: func(q string) (netip.Addr, bool) { return m.Lookup(n, q) }}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.serveUDP(pc) }()
	go func() { defer wg.Done(); r.serveTCP(ln) }()
	report(nil)
	defer wg.Wait()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		needed, unlock, err := m.ResolverNeeded(tenant, name)
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

// resolver answers one network's names.
type resolver struct {
	// subnet is the network's: the only sources answered.
	subnet netip.Prefix
	// lookup is a name's address in the network.
	lookup func(qname string) (netip.Addr, bool)
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
	return err == nil && r.subnet.Contains(ap.Addr().Unmap())
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
