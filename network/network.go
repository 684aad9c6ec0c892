// Package network plumbs containers' networks through CNI (the reference plugins: bridge with
// host-local IPAM, portmap; run by Manager.Plugins, package network/cni): per-tenant network
// definitions under <state-root>/networks/<tenant>/, attaching a container's network namespace
// to one, and detaching it again. It knows nothing of policy or the sandbox: the engine decides, creates the
// container (whose network namespace the sandbox made) and hands its namespace here.
package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
)

// DefaultName is the network `bulwark run -p` attaches to when none is named (created on first
// use for each tenant), as Docker's default bridge.
const DefaultName = "bridge"

// Reserved names are network modes, not networks.
var reserved = []string{"none", "host", "default"}

// Pool is where subnets are allocated from, one /24 per network. A test or an operator whose
// hosts use it already sets another (Manager.Pool).
var Pool = netip.MustParsePrefix("10.209.0.0/16")

// ErrNotFound, ErrExist and ErrInUse classify failures for callers that map them to statuses.
var (
	ErrNotFound = errdefs.New(errdefs.ErrNotFound, "no such network")
	ErrExist    = errdefs.New(errdefs.ErrAlreadyExists, "network already exists")
	ErrInUse    = errdefs.New(errdefs.ErrConflict, "network has attached containers")
)

// Network is one tenant's network definition.
type Network struct {
	Name   string `json:"name"`
	Tenant string `json:"tenant"`
	// Subnet and Gateway are the network's IPv4 addresses; the gateway is the bridge's.
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// Bridge is the host bridge's name, derived from tenant and name (unique per host).
	Bridge  string    `json:"bridge"`
	Created time.Time `json:"created"`
	// Containers are the attached containers (Inspect and List fill it).
	Containers []Endpoint `json:"containers,omitempty"`
}

// Endpoint is one container attached to a network.
type Endpoint struct {
	Container string        `json:"container"`
	IP        netip.Addr    `json:"ip"`
	Ports     []PortMapping `json:"ports,omitempty"`
	Bandwidth *Bandwidth    `json:"bandwidth,omitempty"`
}

// Manager keeps the networks of one state root.
type Manager struct {
	// Dir is <state-root>/networks.
	Dir string
	// PluginDirs are searched for the CNI plugins (default /usr/lib/cni, Debian's
	// containernetworking-plugins, then /opt/cni/bin).
	PluginDirs []string
	// Pool overrides the package's Pool when valid.
	Pool netip.Prefix
	// Plugins runs the CNI plugins (plugins.go); without it, nothing can be attached or
	// detached.
	Plugins Plugins
	// Resolver is the command (argv; tenant and network name are appended) that serves a
	// network's resolver (package network/resolver); empty, networks have none and resolve no names.
	Resolver []string
}

// New returns the manager of the networks under stateRoot.
func New(stateRoot string) *Manager {
	return &Manager{Dir: filepath.Join(stateRoot, "networks"), PluginDirs: []string{"/usr/lib/cni", "/opt/cni/bin"}}
}

// nameRE is a network name's syntax, at most 63 characters (checked apart: a counted
// repetition is costly to compile), compiled on first use (aliasRE).
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`) })

func checkName(name string) error {
	if len(name) > 63 || !nameRE().MatchString(name) || slices.Contains(reserved, name) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "network name %q: want [a-z0-9][a-z0-9_.-]{0,62}, not one of %v", name, reserved)
	}
	return nil
}

func (m *Manager) tenantDir(tenant string) string { return filepath.Join(m.Dir, tenant) }

func (m *Manager) defPath(tenant, name string) string {
	return filepath.Join(m.tenantDir(tenant), "defs", name+".json")
}

// lock takes the manager's exclusive lock (allocations and attachments of every tenant).
func (m *Manager) lock() (func(), error) {
	if err := os.MkdirAll(m.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("networks dir: %w", err)
	}
	return m.lockExisting()
}

// lockExisting is lock for a caller that must not make the manager's directory anew (a process
// that outlives its state root, such as a resolver): a missing directory is an error satisfying
// errors.Is(err, fs.ErrNotExist).
func (m *Manager) lockExisting() (func(), error) {
	f, err := os.OpenFile(filepath.Join(m.Dir, ".lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("networks lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("networks lock: %w", err)
	}
	return func() { f.Close() }, nil
}

// Create defines a network for tenant with subnet, or with the next free /24 of the pool when
// subnet is the zero prefix. A subnet asked for must be a free /24 of the pool: a network's
// bridge routes its subnet on the host, so one outside the pool could take over addresses the
// host reaches elsewhere.
func (m *Manager) Create(tenant, name string, subnet netip.Prefix) (*Network, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return m.create(tenant, name, subnet)
}

func (m *Manager) create(tenant, name string, subnet netip.Prefix) (*Network, error) {
	if _, err := os.Stat(m.defPath(tenant, name)); err == nil {
		return nil, fmt.Errorf("%w: %s (tenant %s)", ErrExist, name, tenant)
	}
	free, err := m.freeSubnets()
	if err != nil {
		return nil, err
	}
	switch {
	case !subnet.IsValid() && len(free) == 0:
		return nil, fmt.Errorf("no free /24 left in %s", m.pool())
	case !subnet.IsValid():
		subnet = free[0]
	case !slices.Contains(free, subnet):
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "subnet %s: want a free /24 of %s (x.y.z.0/24, one no network has)", subnet, m.pool())
	}
	sum := sha256.Sum256([]byte(tenant + "/" + name))
	n := &Network{
		Name: name, Tenant: tenant, Subnet: subnet, Gateway: subnet.Addr().Next(),
		Bridge: "bw" + hex.EncodeToString(sum[:])[:12], Created: time.Now().UTC(),
	}
	if err := writeJSON(m.defPath(tenant, name), n); err != nil {
		return nil, err
	}
	return n, nil
}

func (m *Manager) pool() netip.Prefix {
	if m.Pool.IsValid() {
		return m.Pool
	}
	return Pool
}

// freeSubnets are the /24s of the pool no network of any tenant has, in order.
func (m *Manager) freeSubnets() ([]netip.Prefix, error) {
	pool := m.pool()
	used := map[netip.Prefix]bool{}
	all, err := m.all()
	if err != nil {
		return nil, err
	}
	for _, n := range all {
		used[n.Subnet] = true
	}
	var out []netip.Prefix
	for a := pool.Masked().Addr(); pool.Contains(a); {
		if p := netip.PrefixFrom(a, 24); !used[p] {
			out = append(out, p)
		}
		b := a.As4()
		if b[2] == 255 {
			break
		}
		b[2]++
		a = netip.AddrFrom4(b)
	}
	return out, nil
}

// all reads every tenant's definitions.
func (m *Manager) all() ([]*Network, error) {
	tenants, err := os.ReadDir(m.Dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out []*Network
	for _, t := range tenants {
		if !t.IsDir() {
			continue
		}
		ns, err := m.list(t.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, ns...)
	}
	return out, nil
}

// List returns tenant's networks, by name.
func (m *Manager) List(tenant string) ([]*Network, error) {
	return m.list(tenant)
}

func (m *Manager) list(tenant string) ([]*Network, error) {
	ents, err := os.ReadDir(filepath.Join(m.tenantDir(tenant), "defs"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []*Network
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		n, err := m.Inspect(tenant, name)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Inspect returns tenant's network name with its attached containers. Another tenant's network
// is answered as missing.
func (m *Manager) Inspect(tenant, name string) (*Network, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(m.defPath(tenant, name))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read network %s: %w", name, err)
	}
	n := &Network{}
	if err := json.Unmarshal(b, n); err != nil {
		return nil, fmt.Errorf("network %s: %w", name, err)
	}
	atts, err := m.attachments(tenant)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		if a.Network == name {
			n.Containers = append(n.Containers, Endpoint{Container: a.Container, IP: a.IP, Ports: a.Ports, Bandwidth: a.Bandwidth})
		}
	}
	return n, nil
}

// Remove deletes tenant's network; one with attached containers is refused, naming them.
func (m *Manager) Remove(tenant, name string) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	n, err := m.Inspect(tenant, name)
	if err != nil {
		return err
	}
	if len(n.Containers) > 0 {
		ids := make([]string, len(n.Containers))
		for i, c := range n.Containers {
			ids[i] = c.Container
		}
		return fmt.Errorf("%w: %s is used by %s", ErrInUse, name, strings.Join(ids, ", "))
	}
	if err := unisolate(n); err != nil {
		return fmt.Errorf("network %s: isolation rules: %w", name, err)
	}
	if err := removeBridge(n.Bridge); err != nil {
		return err
	}
	if err := os.RemoveAll(m.ipamDir(tenant, name)); err != nil {
		return fmt.Errorf("remove network %s leases: %w", name, err)
	}
	if err := os.Remove(m.defPath(tenant, name)); err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

func writeJSON(p string, v any) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
