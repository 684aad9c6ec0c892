package engine

import (
	"context"
	"errors"
	"fmt"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/network"
)

// networks is the state root's network manager (<root>/networks/<tenant>/).
func (e *Engine) networks() *network.Manager { return network.New(e.cfg.Root) }

// NetworkCreate defines a network for who's tenant; it is audited.
func (e *Engine) NetworkCreate(who Caller, name string) (*network.Network, error) {
	if err := checkTenant(who); err != nil {
		return nil, err
	}
	n, err := e.networks().Create(who.tenant(), name)
	return n, e.networkAudit(who, "create", name, n, err)
}

// NetworkRemove deletes one of who's tenant's networks (refused while containers use it).
func (e *Engine) NetworkRemove(who Caller, name string) error {
	if err := checkTenant(who); err != nil {
		return err
	}
	return e.networkAudit(who, "remove", name, nil, e.networks().Remove(who.tenant(), name))
}

// NetworkList lists who's tenant's networks; another tenant's are never shown.
func (e *Engine) NetworkList(who Caller) ([]*network.Network, error) {
	if err := checkTenant(who); err != nil {
		return nil, err
	}
	return e.networks().List(who.tenant())
}

// NetworkInspect describes one of who's tenant's networks (another tenant's is answered as
// missing).
func (e *Engine) NetworkInspect(who Caller, name string) (*network.Network, error) {
	if err := checkTenant(who); err != nil {
		return nil, err
	}
	return e.networks().Inspect(who.tenant(), name)
}

// checkTenant refuses a tenant name that could not be a directory name.
func checkTenant(who Caller) error {
	if !tenantRE.MatchString(who.tenant()) {
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
// loopback), else the network's name.
func networkMode(req *Request) (string, error) {
	switch req.Network {
	case "", "none":
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
	a, err := e.networks().Attach(ctx, plan.Request.Tenant, name, plan.ID, fmt.Sprintf("/proc/%d/ns/net", pid), nil)
	if err != nil {
		return err
	}
	t.Add(audit.TypeContainer, "network.attach", map[string]string{"network": a.Network, "ip": a.IP.String()})
	return nil
}

// detachNetwork releases what the container holds on its network (lease, port mappings).
func (e *Engine) detachNetwork(tenant, id string) error {
	return e.networks().Detach(context.Background(), tenant, id)
}

// checkNetwork refuses, before the decision, a network the tenant does not have.
func (e *Engine) checkNetwork(req *Request) error {
	name, err := networkMode(req)
	if err != nil || name == "" || name == network.DefaultName {
		return err
	}
	if _, err := e.networks().Inspect(req.Tenant, name); err != nil {
		return fmt.Errorf("%w (bulwark network create %s)", err, name)
	}
	return nil
}
