package document

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Context is what the caller knows beyond the spec: who asks, for which tenant, what for.
type Context struct {
	Tenant    string
	Identity  Identity
	Operation Operation
	// Image is nil when the rootfs does not come from an image store (a plain OCI bundle).
	Image *Image
	// Raises are the floor's changes to the requested spec, as the runtime recorded them.
	Raises []Raise
	// Joins are the existing namespaces the floor lets the sandbox join, and why.
	Joins []Join
	// Pod is the pod the runtime proved the sandbox belongs to (nil: none).
	Pod *Pod
	// BundleDir anchors relative bind sources (the OCI bundle directory).
	BundleDir string
	// BindsResolved says the spec's bind sources are already the real host paths of the
	// descriptors the runtime mounts from (sandbox.ResolveBinds): Build takes them as they are
	// instead of walking the path again, which a concurrent rename could answer differently.
	BindsResolved bool
	// StateRoot is the runtime's persistent state root (bulwark --root, bulwark-runc
	// --state-root). Required: the request document carries it, resolved, so policy can refuse
	// binds of it wherever it is.
	StateRoot string
	// StateRootResolved says StateRoot is already what ResolveHostPath returns for it (a caller
	// that resolved it beside its path): Build takes it as it is.
	StateRootResolved bool
	// SeccompProfile names the profile in the effective spec ("default", a file name…); empty
	// means "custom".
	SeccompProfile string
	// MACLayer is the layer the runtime applies ("selinux", "apparmor", "landlock"); empty
	// derives it from the process labels.
	MACLayer string
	// Privileged records an explicit request for a privileged sandbox.
	Privileged bool
	// Process, for exec, is the process to start in an existing sandbox; nil uses spec.Process.
	Process *specs.Process
	// Network names the tenant's network the sandbox is attached to (empty: none); Publish are
	// the ports it publishes on the host through it.
	Network string
	Publish []Publish
	// Hooks are the OCI hooks the runtime would run on the host for this container.
	Hooks []Hook
	// DockerVolumes are the binds of Docker named volumes (bulwark-runc --docker-root), their
	// sources resolved as the spec's bind sources are.
	DockerVolumes []DockerVolume
	// Egress is what the sandbox asks to reach through Network (nil without a network).
	Egress *Egress
	// Bandwidth is the rate limit asked for on Network (nil: none).
	Bandwidth *Bandwidth
}

// requiredNamespaces are the namespaces a sandbox must not share; absent from the spec means
// the host's.
var requiredNamespaces = []specs.LinuxNamespaceType{
	specs.CgroupNamespace, specs.IPCNamespace, specs.MountNamespace, specs.NetworkNamespace,
	specs.PIDNamespace, specs.UserNamespace, specs.UTSNamespace,
}

// Build makes the request document from an effective spec (after the floor) and its context.
// Bind sources are resolved on this host (see ResolveHostPath); env values are dropped.
func Build(spec *specs.Spec, c Context) (*Request, error) {
	if spec == nil {
		return nil, errors.New("build request: no spec")
	}
	if spec.Linux == nil {
		return nil, errors.New("build request: spec has no linux section")
	}
	proc := c.Process
	if proc == nil {
		proc = spec.Process
	}
	if proc == nil {
		return nil, errors.New("build request: spec has no process")
	}
	r := &Request{
		APIVersion:   APIVersion,
		Tenant:       c.Tenant,
		Identity:     c.Identity,
		Operation:    c.Operation,
		Privileged:   c.Privileged,
		Image:        c.Image,
		Process:      buildProcess(proc),
		Capabilities: capabilitySet(proc.Capabilities),
		Rootfs:       Rootfs{ReadOnly: spec.Root != nil && spec.Root.Readonly},
		Seccomp:      buildSeccomp(spec.Linux.Seccomp, c.SeccompProfile),
		MAC:          buildMAC(proc, c.MACLayer),
		Devices:      []Device{},
		DeviceRules:  []DeviceRule{},
		Sysctls:      maps.Clone(spec.Linux.Sysctl),
		Rlimits:      []Rlimit{},
		Annotations:  maps.Clone(spec.Annotations),
		Raises:       append([]Raise{}, c.Raises...),
	}
	if c.StateRoot == "" {
		return nil, errors.New("build request: no state root")
	}
	r.StateRoot = c.StateRoot
	if !c.StateRootResolved {
		root, err := ResolveHostPath(c.StateRoot)
		if err != nil {
			return nil, fmt.Errorf("build request: state root: %w", err)
		}
		r.StateRoot = root
	}
	mounts, err := buildMounts(spec.Mounts, c.BundleDir, c.BindsResolved)
	if err != nil {
		return nil, err
	}
	r.Mounts = mounts
	r.Namespaces, r.Network = buildNamespaces(spec.Linux.Namespaces, c.Joins)
	r.Network.Name, r.Publish, r.Hooks, r.Egress, r.Bandwidth, r.Pod = c.Network, c.Publish, c.Hooks, c.Egress, c.Bandwidth, c.Pod
	r.DockerVolumes = c.DockerVolumes
	for _, d := range spec.Linux.Devices {
		r.Devices = append(r.Devices, Device{Type: d.Type, Path: d.Path, Major: d.Major, Minor: d.Minor})
	}
	if res := spec.Linux.Resources; res != nil {
		r.Resources, r.DeviceRules = buildResources(res)
	}
	for _, l := range proc.Rlimits {
		r.Rlimits = append(r.Rlimits, Rlimit{Type: l.Type, Hard: l.Hard, Soft: l.Soft})
	}
	if r.Sysctls == nil {
		r.Sysctls = map[string]string{}
	}
	if r.Annotations == nil {
		r.Annotations = map[string]string{}
	}
	return r, nil
}

func buildProcess(p *specs.Process) Process {
	out := Process{
		Args:            append([]string{}, p.Args...),
		User:            User{UID: p.User.UID, GID: p.User.GID, AdditionalGids: p.User.AdditionalGids},
		Cwd:             p.Cwd,
		Env:             make([]string, 0, len(p.Env)),
		Terminal:        p.Terminal,
		NoNewPrivileges: p.NoNewPrivileges,
	}
	for _, e := range p.Env {
		name, _, _ := strings.Cut(e, "=") // the value may be a secret: never keep it
		out.Env = append(out.Env, name)
	}
	return out
}

// capabilitySet is the union of all five sets: a capability in any set is granted somewhere.
func capabilitySet(c *specs.LinuxCapabilities) []string {
	out := []string{}
	if c == nil {
		return out
	}
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		for _, name := range set {
			out = append(out, NormalizeCapability(name))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// NormalizeCapability turns "cap_sys_admin" or "CAP_SYS_ADMIN" into "SYS_ADMIN".
func NormalizeCapability(name string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(name)), "CAP_")
}

// IsBind reports whether a mount is a bind mount (by type or by option, as the kernel sees it).
func IsBind(typ string, options []string) bool {
	return typ == "bind" || slices.Contains(options, "bind") || slices.Contains(options, "rbind")
}

func buildMounts(ms []specs.Mount, bundleDir string, resolved bool) ([]Mount, error) {
	out := make([]Mount, 0, len(ms))
	for i, m := range ms {
		pm := Mount{
			Type:        m.Type,
			Source:      m.Source,
			Destination: m.Destination,
			Options:     append([]string{}, m.Options...),
			ReadOnly:    slices.Contains(m.Options, "ro"),
			Bind:        IsBind(m.Type, m.Options),
		}
		if pm.Bind {
			src := m.Source
			if !filepath.IsAbs(src) {
				if bundleDir == "" {
					return nil, fmt.Errorf("build request: mounts[%d]: relative bind source %q without a bundle directory", i, src)
				}
				src = filepath.Join(bundleDir, src)
			}
			if resolved {
				pm.Source = filepath.Clean(src)
			} else {
				real, err := ResolveHostPath(src)
				if err != nil {
					return nil, fmt.Errorf("build request: mounts[%d]: %w", i, err)
				}
				pm.Source = real
			}
		}
		out = append(out, pm)
	}
	return out, nil
}

// Join is one existing namespace the runtime's floor lets a sandbox join (sandbox.Join): Kind
// "pod" (a namespace of its pod's sandbox, same tenant) or "netns" (a network namespace the CNI
// caller made, at Path); policy decides whether a netns's directory is trusted.
type Join struct {
	Type, Path, Kind, Pod string
}

func buildNamespaces(nss []specs.LinuxNamespace, joins []Join) (map[string]Namespace, Network) {
	have := map[specs.LinuxNamespaceType]string{}
	for _, ns := range nss {
		have[ns.Type] = ns.Path
	}
	out := make(map[string]Namespace, len(requiredNamespaces)+1)
	for _, t := range requiredNamespaces {
		path, ok := have[t]
		ns := Namespace{Shared: !ok || path != "", Path: path}
		for _, j := range joins {
			if j.Type == string(t) && j.Path == path && path != "" {
				ns.Join, ns.Pod = j.Kind, j.Pod
			}
		}
		out[string(t)] = ns
	}
	if path, ok := have[specs.TimeNamespace]; ok {
		out[string(specs.TimeNamespace)] = Namespace{Shared: path != "", Path: path}
	}
	net := Network{Mode: "private"}
	switch path, ok := have[specs.NetworkNamespace]; {
	case !ok:
		net.Mode = "host"
	case path != "":
		net.Mode = "joined"
	}
	return out, net
}

func buildSeccomp(s *specs.LinuxSeccomp, name string) Seccomp {
	if s == nil {
		return Seccomp{Profile: "unconfined"}
	}
	if name == "" {
		name = "custom"
	}
	data, _ := json.Marshal(s) // a spec struct always marshals
	sum := sha256.Sum256(data)
	return Seccomp{Profile: name, Digest: "sha256:" + hex.EncodeToString(sum[:]), DefaultAction: string(s.DefaultAction)}
}

func buildMAC(p *specs.Process, layer string) MAC {
	m := MAC{Layer: layer, Label: p.SelinuxLabel, Profile: p.ApparmorProfile}
	if m.Layer == "" {
		switch {
		case p.SelinuxLabel != "":
			m.Layer = "selinux"
		case p.ApparmorProfile != "":
			m.Layer = "apparmor"
		default:
			m.Layer = "none"
		}
	}
	return m
}

func buildResources(res *specs.LinuxResources) (Resources, []DeviceRule) {
	var r Resources
	if res.Memory != nil {
		r.MemoryLimit = res.Memory.Limit
	}
	if res.Pids != nil {
		r.PidsLimit = res.Pids.Limit
	}
	if res.CPU != nil {
		r.CPUShares, r.CPUQuota, r.CPUPeriod = res.CPU.Shares, res.CPU.Quota, res.CPU.Period
	}
	rules := make([]DeviceRule, 0, len(res.Devices))
	for _, d := range res.Devices {
		dr := DeviceRule{Allow: d.Allow, Type: d.Type, Major: -1, Minor: -1, Access: d.Access}
		if dr.Type == "" {
			dr.Type = "a"
		}
		if d.Major != nil {
			dr.Major = *d.Major
		}
		if d.Minor != nil {
			dr.Minor = *d.Minor
		}
		rules = append(rules, dr)
	}
	return r, rules
}
