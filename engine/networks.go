package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/names"
	"bulwark.dev/bulwark/network"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
)

// networks is the state root's network manager (<root>/networks/<tenant>/).
func (e *Engine) networks() *network.Manager {
	m := network.New(e.cfg.Root)
	m.Resolver = e.cfg.Resolver
	m.Plugins = e.cfg.CNI
	return m
}

// NetworkCreate defines a network for who's tenant, on subnet (a free /24 of the pool) or, when
// subnet is the zero prefix, the next free one; it is audited.
func (e *Engine) NetworkCreate(who Caller, name string, subnet netip.Prefix) (*network.Network, error) {
	if err := checkTenant(who); err != nil {
		return nil, err
	}
	n, err := e.networks().Create(who.tenant(), name, subnet)
	return n, e.networkAudit(who, "create", name, n, err)
}

// NetworkRemove deletes one of who's tenant's networks (refused while live containers use
// it; what dead ones held is released first).
func (e *Engine) NetworkRemove(who Caller, name string) error {
	if err := checkTenant(who); err != nil {
		return err
	}
	if _, err := e.collectNetworks(who, true); err != nil {
		return e.networkAudit(who, "remove", name, nil, err)
	}
	return e.networkAudit(who, "remove", name, nil, e.networks().Remove(who.tenant(), name))
}

// NetworkList lists who's tenant's networks; another tenant's are never shown. What dead
// containers held is released first, so the list shows only live ones.
func (e *Engine) NetworkList(who Caller) ([]*network.Network, error) {
	if err := checkTenant(who); err != nil {
		return nil, err
	}
	if _, err := e.collectNetworks(who, false); err != nil {
		return nil, err
	}
	return e.networks().List(who.tenant())
}

// NetworkInspect describes one of who's tenant's networks (another tenant's is answered as
// missing), after releasing what dead containers held.
func (e *Engine) NetworkInspect(who Caller, name string) (*network.Network, error) {
	if err := checkTenant(who); err != nil {
		return nil, err
	}
	if _, err := e.collectNetworks(who, false); err != nil {
		return nil, err
	}
	return e.networks().Inspect(who.tenant(), name)
}

// NetworkAttachment is who's container id's membership of its network: nil when it has none
// (no network, or released since it stopped).
func (e *Engine) NetworkAttachment(id string, who Caller) (*network.Attachment, error) {
	if _, err := e.lookup(id, who, "inspect"); err != nil {
		return nil, err
	}
	return e.networks().Attached(who.tenant(), id)
}

// NetworkPrune releases what containers that are gone or stopped still held on the host (of
// every tenant: address leases, port mappings, masquerade and egress rules, found from the
// attachment records and swept from the host's rules), then removes who's tenant's networks
// no container uses. It is audited.
func (e *Engine) NetworkPrune(who Caller) ([]string, *network.Collected, error) {
	if err := checkTenant(who); err != nil {
		return nil, nil, err
	}
	got, err := e.collectNetworks(who, true)
	if err != nil {
		return nil, got, err
	}
	removed, err := e.networks().Prune(who.tenant())
	return removed, got, e.networkAudit(who, "prune", strings.Join(removed, " "), nil, err)
}

// collectNetworks detaches every attachment whose container is gone or stopped (a runtime
// killed at any step leaves one: it is written before CNI ADD), and with sweep the leases and
// rules no attachment names. What it released is audited.
func (e *Engine) collectNetworks(who Caller, sweep bool) (*network.Collected, error) {
	got, err := e.networks().Collect(context.Background(), e.containerLive, sweep)
	if got != nil && len(got.Containers)+len(got.Leases)+len(got.Rules) > 0 {
		t := newTrail(e.audit, who.Identity, who.tenant(), NewID())
		t.Add(audit.TypeEngine, "network.collect", map[string]string{
			"containers": strings.Join(got.Containers, " "), "leases": strings.Join(got.Leases, " "),
			"rules": strings.Join(got.Rules, " "),
		})
		err = errors.Join(err, t.Flush())
	}
	return got, err
}

// containerLive reports whether tenant's container id still runs (or is being created): a
// container with no record, another tenant's record, no sandbox state or a stopped one holds
// nothing on its network any more. When in doubt (a record unreadable right now) it is live.
func (e *Engine) containerLive(tenant, id string) bool {
	m, err := e.readMeta(id)
	if errors.Is(err, ErrNotFound) {
		return false
	}
	if err != nil {
		return true
	}
	if m.Tenant != tenant {
		return false
	}
	rt, err := e.runtime(tenant, nil)
	if err != nil {
		return true
	}
	c, err := rt.Load(id)
	if errors.Is(err, sandbox.ErrNotExist) {
		return false
	}
	return err != nil || !stopped(c)
}

// checkTenant refuses a tenant name that could not be a directory name.
func checkTenant(who Caller) error {
	if !names.Tenant(who.tenant()) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "tenant %q: want [a-z0-9][a-z0-9-]{0,62}", who.tenant())
	}
	return nil
}

func (e *Engine) networkAudit(who Caller, action, name string, n *network.Network, err error) error {
	t := newTrail(e.audit, who.Identity, who.tenant(), NewID())
	attrs := map[string]string{"network": name}
	if n != nil {
		attrs["subnet"], attrs["bridge"] = n.Subnet.String(), n.Bridge
	}
	if err != nil {
		attrs["error"] = err.Error()
		action += ".failed"
	}
	t.Add(audit.TypeEngine, "network."+action, attrs)
	return errors.Join(err, t.Flush())
}

// networkMode is the network a request attaches to: "" for none (its namespace keeps only
// loopback), else the network's name. Publishing without a named network takes the tenant's
// default network, as docker run -p does.
func networkMode(req *Request) (string, error) {
	switch req.Network {
	case "":
		if len(req.Publish) > 0 || req.PublishAll {
			return network.DefaultName, nil
		}
		return "", nil
	case "none":
		if len(req.Publish) > 0 || req.PublishAll {
			return "", fmt.Errorf("-p and -P publish through a network: --network none has none")
		}
		return "", nil
	case "host":
		return "", fmt.Errorf("network mode host is refused: a container never shares the host's network namespace (it would reach every host service and port); publish ports with -p instead")
	case "default":
		return network.DefaultName, nil
	}
	return req.Network, nil
}

// attachNetwork connects the created (not yet started) container's network namespace, that of
// its init (the runtime's child, so the pid cannot be reused while it waits), to the request's
// network.
func (e *Engine) attachNetwork(ctx context.Context, plan *Plan, pid int, t *trail) error {
	name, err := networkMode(plan.Request)
	if err != nil || name == "" {
		return err
	}
	ports, err := parsePublish(plan.Request.Publish)
	if err != nil {
		return err
	}
	if plan.Egress == nil {
		return fmt.Errorf("attach: the plan decided no egress for network %s", name)
	}
	// What dead containers still hold (a lease, a host port) is released before this one
	// asks for its own.
	if _, err := e.collectNetworks(Caller{Identity: plan.Request.Identity, Tenant: plan.Request.Tenant}, false); err != nil {
		return err
	}
	a, err := e.networks().Attach(ctx, plan.Request.Tenant, name, plan.ID, fmt.Sprintf("/proc/%d/ns/net", pid), ports, *plan.Egress, plan.Bandwidth, plan.Request.NetworkAliases)
	if err != nil {
		return err
	}
	published := make([]string, len(a.Ports))
	for i, p := range a.Ports {
		published[i] = p.String()
	}
	t.Add(audit.TypeContainer, "network.attach", map[string]string{
		"network": a.Network, "ip": a.IP.String(), "published": strings.Join(published, " "),
		"egress": a.Egress.String(), "bandwidth": a.Bandwidth.String(),
	})
	return nil
}

// publishExposed adds to req.Publish, for -P, every port the image exposes that -p does not
// publish yet, each on a free host port of DefaultPublishAddress (as docker run -P; policy
// decides on them like on any -p).
func (e *Engine) publishExposed(req *Request, exposed map[string]struct{}) error {
	if !req.PublishAll {
		return nil
	}
	have, err := parsePublish(req.Publish)
	if err != nil {
		return err
	}
	published := map[string]bool{}
	for _, p := range have {
		published[fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)] = true
	}
	var want []network.PortMapping
	for _, spec := range slices.Sorted(maps.Keys(exposed)) {
		num, proto, _ := strings.Cut(spec, "/")
		if proto == "" {
			proto = "tcp"
		}
		cport, err := network.Port(num)
		if err != nil || (proto != "tcp" && proto != "udp") {
			return fmt.Errorf("-P: the image exposes %q: want PORT[/tcp|udp]", spec)
		}
		if published[fmt.Sprintf("%d/%s", cport, proto)] {
			continue
		}
		want = append(want, network.PortMapping{HostIP: DefaultPublishAddress, ContainerPort: cport, Protocol: proto})
	}
	got, err := e.networks().FreePorts(want)
	if err != nil {
		return fmt.Errorf("-P: %w", err)
	}
	for _, p := range got {
		req.Publish = append(req.Publish, fmt.Sprintf("%s:%d:%d/%s", p.HostIP, p.HostPort, p.ContainerPort, p.Protocol))
	}
	return nil
}

// DefaultPublishAddress is the host address -p publishes on when it names none. Docker's is
// 0.0.0.0 (every host address); here every address is a grant in policy, and loopback is what
// the default policy grants.
const DefaultPublishAddress = "127.0.0.1"

// parsePublish reads -p values, [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp], each address explicit.
func parsePublish(specs []string) ([]network.PortMapping, error) {
	var out []network.PortMapping
	for _, s := range specs {
		p := network.PortMapping{HostIP: DefaultPublishAddress, Protocol: "tcp"}
		rest := s
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			p.Protocol, rest = rest[i+1:], rest[:i]
			if p.Protocol != "tcp" && p.Protocol != "udp" {
				return nil, fmt.Errorf("-p %s: protocol %q: want tcp or udp", s, p.Protocol)
			}
		}
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 2:
		case 3:
			ip, err := netip.ParseAddr(parts[0])
			if err != nil || !ip.Is4() {
				return nil, fmt.Errorf("-p %s: host address %q: want an IPv4 address", s, parts[0])
			}
			p.HostIP, parts = ip.String(), parts[1:]
		default:
			return nil, fmt.Errorf("-p %s: want [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp] (ranges and a random host port are not supported)", s)
		}
		var err error
		if p.HostPort, err = network.Port(parts[0]); err != nil {
			return nil, fmt.Errorf("-p %s: host port: %w", s, err)
		}
		if p.ContainerPort, err = network.Port(parts[1]); err != nil {
			return nil, fmt.Errorf("-p %s: container port: %w", s, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// policyNetwork is what policy is shown of the request's network: its name, what it publishes
// (each host address explicit) and the egress it asks for (mode "default" when it names none).
func policyNetwork(req *Request) (string, []document.Publish, *document.Egress, error) {
	name, err := networkMode(req)
	if err != nil {
		return "", nil, nil, err
	}
	ports, err := parsePublish(req.Publish)
	if err != nil {
		return "", nil, nil, err
	}
	var out []document.Publish
	for _, p := range ports {
		out = append(out, document.Publish{HostIP: p.HostIP, HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
	}
	egress, err := requestEgress(name, req.Egress)
	return name, out, egress, err
}

// requestEgress is the request document's egress: nil without a network.
func requestEgress(networkName string, values []string) (*document.Egress, error) {
	if networkName == "" {
		if len(values) > 0 {
			return nil, fmt.Errorf("--egress applies to a network: the request attaches to none")
		}
		return nil, nil
	}
	if len(values) == 0 {
		return &document.Egress{Mode: "default"}, nil
	}
	e, err := network.ParseEgress(values)
	if err != nil {
		return nil, err
	}
	out := &document.Egress{Mode: e.Mode}
	for _, r := range e.Allow {
		pr := document.EgressRule{CIDR: r.CIDR.String(), Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort}
		if pr.Protocol == "" {
			pr.Protocol = "any"
		}
		if pr.FromPort == 0 {
			pr.FromPort, pr.ToPort = 1, 65535
		}
		out.Allow = append(out.Allow, pr)
	}
	return out, nil
}

// decidedEgress is the egress an allowed request gets: what it asked for, or, naming none, the
// tenant's from the decision's constraints (a policy that says nothing restricts nothing: any).
// Nil without a network.
func decidedEgress(req *Request, networkName string, c document.Constraints) (*network.Egress, error) {
	if networkName == "" {
		return nil, nil
	}
	values := req.Egress
	if len(values) == 0 {
		values = c.Egress
	}
	if len(values) == 0 {
		values = []string{network.EgressAny}
	}
	e, err := network.ParseEgress(values)
	if err != nil {
		return nil, fmt.Errorf("egress from policy's constraints: %w", err)
	}
	return &e, nil
}

// detachNetwork releases what the container holds on its network (lease, port mappings).
func (e *Engine) detachNetwork(tenant, id string) error {
	return e.networks().Detach(context.Background(), tenant, id)
}

// checkNetwork refuses, before the decision, a malformed -p and a network the tenant does not
// have. It returns the network the request attaches to (nil: none); the tenant's default
// network is made on its first use, except by a dry run (nil then too).
func (e *Engine) checkNetwork(req *Request) (*network.Network, error) {
	name, err := networkMode(req)
	if err == nil {
		_, err = parsePublish(req.Publish)
	}
	if err != nil || name == "" {
		return nil, err
	}
	m := e.networks()
	n, err := m.Inspect(req.Tenant, name)
	if errors.Is(err, network.ErrNotFound) && name == network.DefaultName {
		if req.DryRun {
			return nil, nil
		}
		if n, err = m.Create(req.Tenant, name, netip.Prefix{}); errors.Is(err, network.ErrExist) {
			n, err = m.Inspect(req.Tenant, name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w (bulwark network create %s)", err, name)
	}
	return n, nil
}

// nameResolver points the container's /etc/resolv.conf at its network's resolver, where the
// engine starts one.
func (e *Engine) nameResolver(s *specs.Spec, n *network.Network) {
	if n != nil && len(e.cfg.Resolver) > 0 {
		s.Annotations[sandbox.AnnotationNameservers] = n.Gateway.String()
	}
}
