package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// PortMapping publishes a container port on the host, in CNI's portMappings form.
type PortMapping struct {
	HostIP        string `json:"hostIP,omitempty"`
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

func (p PortMapping) String() string {
	host := p.HostIP
	if host == "" {
		host = "0.0.0.0"
	}
	return fmt.Sprintf("%s:%d->%d/%s", host, p.HostPort, p.ContainerPort, p.Protocol)
}

// Attachment is one container's membership of a network, kept until Detach.
type Attachment struct {
	Container string        `json:"container"`
	Network   string        `json:"network"`
	IP        netip.Addr    `json:"ip"`
	Ports     []PortMapping `json:"ports,omitempty"`
	// Egress is what the container may open connections to (egress.go).
	Egress Egress `json:"egress"`
	// HostVeth is the host side of the container's interface, its port on the bridge.
	HostVeth string `json:"hostVeth,omitempty"`
	// Bandwidth are the container's rate limits (bandwidth.go); nil: none.
	Bandwidth *Bandwidth `json:"bandwidth,omitempty"`
	// Aliases are names the network's resolver answers with the container's address besides
	// its id (a daemon's container name, docker's --network-alias).
	Aliases []string `json:"aliases,omitempty"`
	// ConfList is the CNI configuration the container was attached with (detach uses it even if
	// the definition changed since).
	ConfList json.RawMessage `json:"confList"`
}

// aliasRE is what a network alias may be: a container name's syntax, at most 128 characters
// (checked apart: a counted repetition is costly to compile). It is compiled on first use, as
// are this package's other expressions: a run without a network, like most processes of the
// bulwark CLI, uses none of them.
var aliasRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) })

func validAlias(al string) bool { return len(al) <= 128 && aliasRE().MatchString(al) }

// ifName is the container's interface.
const ifName = "eth0"

func (m *Manager) ipamDir(tenant, name string) string {
	return filepath.Join(m.tenantDir(tenant), "ipam", name)
}

func (m *Manager) attachPath(tenant, container string) string {
	return filepath.Join(m.tenantDir(tenant), "attachments", container+".json")
}

// confList is the CNI configuration of n: a bridge (the gateway, masquerading the network's
// egress) with host-local addresses leased under the tenant's directory, and portmap.
func (m *Manager) confList(n *Network) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "bulwark-" + n.Tenant + "-" + n.Name,
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": n.Bridge, "isGateway": true, "ipMasq": true,
				"ipam": map[string]any{
					"type":    "host-local",
					"ranges":  [][]map[string]string{{{"subnet": n.Subnet.String(), "gateway": n.Gateway.String()}}},
					"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
					"dataDir": m.ipamDir(n.Tenant, n.Name),
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.Marshal(conf)
}

// pluginOp is the CNI operation of container's attachment under tenant with the configuration
// list raw (netns "" for a DEL: the namespace may be gone).
func (m *Manager) pluginOp(tenant, container, netns string, raw []byte, ports []PortMapping, bw *Bandwidth) (*PluginOp, error) {
	if m.Plugins == nil {
		return nil, errors.New("networks: this manager runs no CNI plugins (Manager.Plugins)")
	}
	op := &PluginOp{PluginDirs: m.PluginDirs, CacheDir: filepath.Join(m.tenantDir(tenant), "cache"), ConfList: raw,
		ContainerID: container, NetNS: netns, IfName: ifName}
	if len(ports) > 0 || bw != nil {
		op.CapabilityArgs = map[string]any{}
	}
	if len(ports) > 0 {
		op.CapabilityArgs["portMappings"] = ports
	}
	if bw != nil {
		op.CapabilityArgs["bandwidth"] = bw
	}
	return op, nil
}

// Attach connects the network namespace at netns (the container's, e.g. /proc/PID/ns/net of its
// init, held by the caller) to tenant's network, publishing ports, its egress restricted to
// egress before it returns, its traffic shaped to bw (nil: unlimited), its resolver answering
// aliases too. The default network is created on first use. On failure nothing is left attached.
func (m *Manager) Attach(ctx context.Context, tenant, network, container, netns string, ports []PortMapping, egress Egress, bw *Bandwidth, aliases []string) (*Attachment, error) {
	if !slices.Contains(EgressModes, egress.Mode) {
		return nil, fmt.Errorf("egress mode %q: want one of %v", egress.Mode, EgressModes)
	}
	for _, al := range aliases {
		if !validAlias(al) {
			return nil, fmt.Errorf("network alias %q: want a DNS name, [A-Za-z0-9][A-Za-z0-9_.-]{0,127}", al)
		}
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(m.attachPath(tenant, container)); err == nil {
		return nil, fmt.Errorf("container %s is already attached to a network", container)
	}
	n, err := m.Inspect(tenant, network)
	if errors.Is(err, ErrNotFound) && network == DefaultName {
		n, err = m.create(tenant, network, netip.Prefix{})
	}
	if err != nil {
		return nil, err
	}
	if err := m.checkPorts(ports); err != nil {
		return nil, err
	}
	if err := isolate(n); err != nil {
		return nil, fmt.Errorf("network %s: isolation rules: %w", network, err)
	}
	raw, err := m.confList(n)
	if err == nil && bw != nil {
		raw, err = withBandwidth(raw)
	}
	if err != nil {
		return nil, err
	}
	op, err := m.pluginOp(tenant, container, netns, raw, ports, bw)
	if err != nil {
		return nil, err
	}
	a := &Attachment{Container: container, Network: network, Ports: ports, Egress: egress, Bandwidth: bw, Aliases: aliases, ConfList: raw}
	// The record goes first: a runtime killed during ADD leaves something Detach can undo.
	if err := writeJSON(m.attachPath(tenant, container), a); err != nil {
		return nil, err
	}
	res, err := m.Plugins.Add(ctx, op)
	if err != nil {
		derr := m.del(context.WithoutCancel(ctx), tenant, a)
		return nil, errors.Join(fmt.Errorf("attach %s to network %s: %w", container, network, err), derr)
	}
	a.IP = res.IP
	for _, i := range res.Interfaces {
		if i.Sandbox == "" && i.Name != n.Bridge {
			a.HostVeth = i.Name
		}
	}
	if err := writeJSON(m.attachPath(tenant, container), a); err != nil {
		return nil, errors.Join(err, m.del(context.WithoutCancel(ctx), tenant, a))
	}
	if err := restrictEgress(n, tenant, container, a.HostVeth, egress); err != nil {
		return nil, errors.Join(err, m.del(context.WithoutCancel(ctx), tenant, a))
	}
	if err := m.ensureResolver(n); err != nil {
		return nil, errors.Join(err, m.del(context.WithoutCancel(ctx), tenant, a))
	}
	return a, nil
}

// Detach disconnects container from its network (nothing if it has none): CNI DEL releases its
// address lease and port mappings; its interface goes with its namespace.
func (m *Manager) Detach(ctx context.Context, tenant, container string) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	a, err := m.attachment(tenant, container)
	if err != nil || a == nil {
		return err
	}
	return m.del(ctx, tenant, a)
}

// Attached returns container's attachment, nil if it has none.
func (m *Manager) Attached(tenant, container string) (*Attachment, error) {
	return m.attachment(tenant, container)
}

func (m *Manager) attachment(tenant, container string) (*Attachment, error) {
	b, err := os.ReadFile(m.attachPath(tenant, container))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read attachment of %s: %w", container, err)
	}
	a := &Attachment{}
	if err := json.Unmarshal(b, a); err != nil {
		return nil, fmt.Errorf("attachment of %s: %w", container, err)
	}
	return a, nil
}

func (m *Manager) attachments(tenant string) ([]*Attachment, error) {
	ents, err := os.ReadDir(filepath.Join(m.tenantDir(tenant), "attachments"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list attachments: %w", err)
	}
	var out []*Attachment
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		a, err := m.attachment(tenant, id)
		if err != nil {
			return nil, err
		}
		if a != nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// del runs CNI DEL for a (the namespace may be gone: the plugins release what they hold on the
// host without it) and forgets the attachment.
func (m *Manager) del(ctx context.Context, tenant string, a *Attachment) error {
	if a.Egress.Mode != EgressAny { // any installs nothing
		if err := unrestrictEgress(tenant, a.Container); err != nil {
			return fmt.Errorf("detach %s: egress rules: %w", a.Container, err)
		}
	}
	name, err := confListName(a.ConfList)
	if err != nil {
		return fmt.Errorf("detach %s: %w", a.Container, err)
	}
	op, err := m.pluginOp(tenant, a.Container, "", a.ConfList, a.Ports, nil)
	if err != nil {
		return fmt.Errorf("detach %s: %w", a.Container, err)
	}
	if err := m.Plugins.Del(ctx, op); err != nil {
		return fmt.Errorf("detach %s from network %s: %w", a.Container, a.Network, err)
	}
	if err := dropMasquerade(name, a.Container); err != nil {
		return fmt.Errorf("detach %s from network %s: masquerade rule: %w", a.Container, a.Network, err)
	}
	if err := os.Remove(m.attachPath(tenant, a.Container)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("detach %s: %w", a.Container, err)
	}
	return nil
}

// removeBridge deletes a network's bridge from the host, if the bridge plugin made it.
func removeBridge(name string) error {
	// ip (netlink) sees the caller's network namespace; /sys/class/net shows sysfs's.
	if exec.Command("ip", "link", "show", "dev", name).Run() != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "delete", name, "type", "bridge").CombinedOutput(); err != nil {
		return fmt.Errorf("delete bridge %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
