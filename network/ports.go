package network

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A host port is held when another attachment (of any tenant) publishes it, or when a socket
// of the host (the namespace the plugins run in) is bound to it: portmap's DNAT would take that
// service's traffic. Either is refused naming the holder.

// holder names what holds p's host port: a container publishing it, or a host process bound
// to it (its pid and command, or the socket's inode when no process could be found); "" when
// free.
func (m *Manager) holder(p PortMapping) (string, error) {
	tenants, err := os.ReadDir(m.Dir)
	if err != nil && !os.IsNotExist(err) {
		return "", err
	}
	for _, t := range tenants {
		if !t.IsDir() {
			continue
		}
		atts, err := m.attachments(t.Name())
		if err != nil {
			return "", err
		}
		for _, a := range atts {
			for _, held := range a.Ports {
				if p.HostPort == held.HostPort && p.Protocol == held.Protocol && overlaps(p.HostIP, held.HostIP) {
					return fmt.Sprintf("container %s (%s)", a.Container, held), nil
				}
			}
		}
	}
	inode, addr, err := hostSocket(p)
	if err != nil || inode == "" {
		return "", err
	}
	if pid, comm := socketOwner(inode); pid != "" {
		return fmt.Sprintf("host process %s (%s, bound to %s)", pid, comm, addr), nil
	}
	return fmt.Sprintf("a host socket (inode %s, bound to %s)", inode, addr), nil
}

// overlaps reports whether two host addresses share traffic ("" and 0.0.0.0 are every address).
func overlaps(a, b string) bool {
	wild := func(s string) bool { return s == "" || s == "0.0.0.0" || s == "::" }
	return a == b || wild(a) || wild(b)
}

// checkPorts refuses a host port something holds, naming the holder.
func (m *Manager) checkPorts(ports []PortMapping) error {
	for _, p := range ports {
		h, err := m.holder(p)
		if err != nil {
			return err
		}
		if h != "" {
			return fmt.Errorf("host port %d/%s is already in use: held by %s", p.HostPort, p.Protocol, h)
		}
	}
	return nil
}

// FreePorts gives each of ports (HostPort 0) a host port nothing holds, from the kernel's
// ephemeral range (net.ipv4.ip_local_port_range), as docker run -P does. Another run may take
// one before this one attaches: Attach checks again under its lock.
func (m *Manager) FreePorts(ports []PortMapping) ([]PortMapping, error) {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, lerr := strconv.Atoi(f[0])
			h, herr := strconv.Atoi(f[1])
			if lerr == nil && herr == nil && l >= 1 && l <= h && h <= 65535 {
				lo, hi = l, h
			}
		}
	}
	picked := map[int]bool{}
	out := make([]PortMapping, len(ports))
	for i, p := range ports {
		start := lo + rand.IntN(hi-lo+1)
		for k := 0; ; k++ {
			if k > hi-lo {
				return nil, fmt.Errorf("no free host port for %d/%s in %d-%d", p.ContainerPort, p.Protocol, lo, hi)
			}
			p.HostPort = lo + (start-lo+k)%(hi-lo+1)
			if picked[p.HostPort] {
				continue
			}
			h, err := m.holder(p)
			if err != nil {
				return nil, err
			}
			if h == "" {
				break
			}
		}
		picked[p.HostPort] = true
		out[i] = p
	}
	return out, nil
}

// hostSocket finds a socket of this namespace bound to p's port and protocol on an address
// overlapping p's (TCP listening, UDP bound), from /proc/net: its inode and address.
func hostSocket(p PortMapping) (string, string, error) {
	state := "0A" // TCP_LISTEN
	if p.Protocol == "udp" {
		state = "07" // TCP_CLOSE: a bound, unconnected UDP socket
	}
	for _, file := range []string{p.Protocol, p.Protocol + "6"} {
		f, err := os.Open(filepath.Join("/proc/net", file))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("host sockets: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != state {
				continue
			}
			addr, port, ok := procAddr(fl[1])
			if !ok || port != p.HostPort {
				continue
			}
			if overlaps(p.HostIP, addr.Unmap().String()) || addr.IsUnspecified() {
				f.Close()
				return fl[9], netip.AddrPortFrom(addr, uint16(port)).String(), nil
			}
		}
		f.Close()
	}
	return "", "", nil
}

// procAddr reads /proc/net's ADDR:PORT, the address in hex as the kernel stores it (32-bit
// words in host byte order: little-endian here).
func procAddr(s string) (netip.Addr, int, bool) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.Addr{}, 0, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	raw, herr := hex.DecodeString(a)
	if err != nil || herr != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.Addr{}, 0, false
	}
	for w := 0; w < len(raw); w += 4 {
		raw[w], raw[w+1], raw[w+2], raw[w+3] = raw[w+3], raw[w+2], raw[w+1], raw[w]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return addr, int(port), true
}

// socketOwner finds a process holding the socket with inode (through /proc/*/fd): its pid and
// command; "" when none is visible.
func socketOwner(inode string) (string, string) {
	want := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, pr := range procs {
		if _, err := strconv.Atoi(pr.Name()); err != nil {
			continue
		}
		dir := filepath.Join("/proc", pr.Name(), "fd")
		fds, _ := os.ReadDir(dir)
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join(dir, fd.Name())); l == want {
				comm, _ := os.ReadFile(filepath.Join("/proc", pr.Name(), "comm"))
				return pr.Name(), strings.TrimSpace(string(comm))
			}
		}
	}
	return "", ""
}
