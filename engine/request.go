package engine

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox"
)

// Identity is who asks: the caller's uid/gid (the CLI), or a daemon's authenticated principal.
type Identity struct {
	UID       int    `json:"uid"`
	GID       int    `json:"gid"`
	Principal string `json:"principal,omitempty"`
}

// Request is one `bulwark run`: docker-like options, decided by policy before anything runs.
type Request struct {
	ID       string   `json:"id,omitempty"` // request id; generated when empty
	Identity Identity `json:"identity"`
	Tenant   string   `json:"tenant"`
	Image    string   `json:"image"`
	// Args replaces the image's Cmd (the Entrypoint stays, as in docker).
	Args       []string `json:"args,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Env        []string `json:"env,omitempty"` // KEY=VALUE
	Workdir    string   `json:"workdir,omitempty"`
	User       string   `json:"user,omitempty"` // uid[:gid] or name[:group], as in the image
	Hostname   string   `json:"hostname,omitempty"`
	Name       string   `json:"name,omitempty"`
	// CapAdd and CapDrop change Docker's default capability set (DefaultCapabilities), as
	// docker run's --cap-add and --cap-drop do ("ALL" in CapDrop: start from none). The floor
	// keeps the grantable ones and policy the tenant's; a default the tenant is not granted is
	// dropped, an added one denied.
	CapAdd    []string `json:"capAdd,omitempty"`
	CapDrop   []string `json:"capDrop,omitempty"`
	Memory    int64    `json:"memory,omitempty"` // bytes
	PidsLimit int64    `json:"pidsLimit,omitempty"`
	CPUs      float64  `json:"cpus,omitempty"`
	Tmpfs     []string `json:"tmpfs,omitempty"`   // DST[:OPTIONS]
	Volumes   []string `json:"volumes,omitempty"` // SRC:DST[:ro|:rw]
	// Mounts are docker's --mount values: type=volume|bind|tmpfs,source=…,destination=…,….
	Mounts []string `json:"mounts,omitempty"`
	// Seccomp is a Docker-format profile file stacked on the floor's default allowlist, or
	// "unconfined" (which the default policy denies); empty: the floor's allowlist alone.
	Seccomp string   `json:"seccomp,omitempty"`
	Ulimits []string `json:"ulimits,omitempty"` // NAME=SOFT[:HARD]
	// Network is "none" (the default: the private namespace keeps only loopback) or the name of
	// one of the tenant's networks ("default": the tenant's default bridge network, created on
	// first use); "host" is refused.
	Network string `json:"network,omitempty"`
	// Publish are docker run's -p values, [IP:]HOSTPORT:CONTAINERPORT[/tcp|udp]; the host
	// address defaults to DefaultPublishAddress, and policy decides which it may be.
	Publish []string `json:"publish,omitempty"`
	// PublishAll (docker run -P) publishes every port the image exposes that Publish does not,
	// each on a free host port of DefaultPublishAddress; Prepare adds them to Publish.
	PublishAll bool `json:"publishAll,omitempty"`
	// Egress is what the container may open connections to through its network: one mode
	// (none, network, any) or allowlist entries [tcp:|udp:]CIDR[:PORT[-PORT]]; empty, the
	// tenant's (policy's constraints.egress). Policy decides what a tenant may ask for.
	Egress []string `json:"egress,omitempty"`
	// NetworkRate is --network-rate: RATE for both directions, or ingress=RATE and/or
	// egress=RATE, in bits per second with an optional unit (network.ParseNetworkRate); policy
	// refuses a rate above the tenant's maximum, which an unlimited direction gets.
	NetworkRate string `json:"networkRate,omitempty"`
	// NetworkAliases are names the network's resolver answers with the container's address
	// besides its name (bulwarkd's per-tenant container names, docker's --network-alias);
	// without a network there is nothing to answer them.
	NetworkAliases []string          `json:"networkAliases,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	// WritableRoot asks for a writable root filesystem (docker's --read-only=false), which
	// policy grants or refuses (writableroot.go).
	WritableRoot bool `json:"writableRoot,omitempty"`
	// TTY gives the workload a terminal (docker's -t): its stdio is the slave of a pty whose
	// master goes to the caller (IO.ConsoleSocket) or, detached, to the monitor (attach).
	// TTYRows and TTYCols are its initial size (0: the kernel's default).
	TTY     bool   `json:"tty,omitempty"`
	TTYRows uint16 `json:"ttyRows,omitempty"`
	TTYCols uint16 `json:"ttyCols,omitempty"`
	Remove  bool   `json:"remove,omitempty"`
	Detach  bool   `json:"detach,omitempty"`
	// Restart is docker's --restart (ParseRestartPolicy), for a detached container.
	Restart string `json:"restart,omitempty"`
	// LogMaxSize and LogMaxFiles rotate a detached container's log (docker's --log-opt
	// max-size, max-file); zero takes DefaultLogMaxSize and DefaultLogMaxFiles.
	LogMaxSize  int64 `json:"logMaxSize,omitempty"`
	LogMaxFiles int   `json:"logMaxFiles,omitempty"`
	// Privileged is docker's --privileged: shown to policy (which denies it), and refused by the
	// engine whatever policy says — the floor has no privileged mode.
	Privileged bool `json:"privileged,omitempty"`
	// DryRun decides and reports without creating anything.
	DryRun bool `json:"dryRun,omitempty"`
}

// Annotations the engine sets on every container.
const (
	AnnotationRequest = "dev.bulwark.request"
	AnnotationImage   = "dev.bulwark.image"
	AnnotationDigest  = "dev.bulwark.image.digest"
)

// NewID returns a random 12-hex-digit id for requests and containers.
func NewID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// buildSpec turns the image configuration and the request into the requested spec (before the
// floor). Names in User are resolved in the image's own /etc/passwd and /etc/group.
func buildSpec(req *Request, cfg ocispec.ImageConfig, rootfs *imageRoot, id string) (*specs.Spec, string, error) {
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(req.Entrypoint) > 0 {
		args = append([]string{}, req.Entrypoint...)
		if len(req.Args) > 0 {
			args = append(args, req.Args...)
		}
	} else if len(req.Args) > 0 {
		args = append(append([]string{}, cfg.Entrypoint...), req.Args...)
	}
	if len(args) == 0 {
		return nil, "", fmt.Errorf("no command: the image has no Cmd or Entrypoint and none was given")
	}
	env := mergeEnv(cfg.Env, req.Env)
	cwd := req.Workdir
	if cwd == "" {
		cwd = cfg.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, "", fmt.Errorf("working directory %q is not absolute", cwd)
	}
	userSpec := req.User
	if userSpec == "" {
		userSpec = cfg.User
	}
	user, err := resolveUser(rootfs, userSpec)
	if err != nil {
		return nil, "", err
	}
	hostname := req.Hostname
	if hostname == "" {
		hostname = id
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfsPath, Readonly: !req.WritableRoot},
		Process: &specs.Process{
			Args: args, Env: env, Cwd: path.Clean(cwd), User: user, NoNewPrivileges: true,
		},
		Hostname:    hostname,
		Annotations: map[string]string{},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.UserNamespace}, {Type: specs.MountNamespace}, {Type: specs.PIDNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.CgroupNamespace},
				{Type: specs.NetworkNamespace},
			},
			Resources: resources(req),
		},
	}
	if s.Process.Capabilities, err = capSet(req.CapAdd, req.CapDrop); err != nil {
		return nil, "", err
	}
	if req.TTY {
		s.Process.Terminal = true
		if req.TTYRows > 0 && req.TTYCols > 0 {
			s.Process.ConsoleSize = &specs.Box{Height: uint(req.TTYRows), Width: uint(req.TTYCols)}
		}
	}
	for k, v := range cfg.Labels {
		s.Annotations["org.opencontainers.image.label."+k] = v
	}
	for k, v := range req.Annotations {
		s.Annotations[k] = v
	}
	if s.Mounts, err = mounts(req); err != nil {
		return nil, "", err
	}
	if s.Process.Rlimits, err = rlimits(req.Ulimits); err != nil {
		return nil, "", err
	}
	profile := "default"
	switch {
	case req.Seccomp == "unconfined":
		// Asked for; policy sees it and denies. The floor would load its allowlist anyway.
		profile = "unconfined"
	case req.Seccomp != "":
		b, err := os.ReadFile(req.Seccomp)
		if err != nil {
			return nil, "", fmt.Errorf("seccomp profile: %w", err)
		}
		if s.Linux.Seccomp, err = profiles.ParseDockerSeccomp(b); err != nil {
			return nil, "", fmt.Errorf("seccomp profile %s: %w", req.Seccomp, err)
		}
		profile = path.Base(req.Seccomp)
	}
	return s, profile, nil
}

// mergeEnv overrides the image's variables with the request's, keeping order.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	idx := map[string]int{}
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		idx[k] = i
	}
	for _, e := range over {
		k, _, ok := strings.Cut(e, "=")
		if !ok {
			v, set := os.LookupEnv(k) // docker's -e NAME passes the caller's value
			if !set {
				continue
			}
			e = k + "=" + v
		}
		if i, ok := idx[k]; ok {
			out[i] = e
			continue
		}
		idx[k] = len(out)
		out = append(out, e)
	}
	return out
}

// DefaultCapabilities is the set docker run asks for a container (moby's
// oci/caps.DefaultCapabilities): bulwark run asks for the same, so an image behaves as under
// `docker run --runtime bulwark`. The floor drops those it never grants (MKNOD, NET_RAW,
// SETFCAP, SETPCAP, SYS_CHROOT, AUDIT_WRITE) and records the drop.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// capName normalises a capability as docker does: case-insensitive, with or without CAP_.
func capName(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

// capSet is the requested capability set (bounding = effective = permitted), as docker computes
// it: the defaults without the dropped ones ("ALL": none of them), plus the added ones. Nil when
// nothing is left.
func capSet(add, drop []string) (*specs.LinuxCapabilities, error) {
	dropped := map[string]bool{}
	for _, c := range drop {
		n := capName(c)
		if n != "ALL" && !sandbox.KnownCapability(n) {
			return nil, fmt.Errorf("--cap-drop %q: unknown capability", c)
		}
		dropped[n] = true
	}
	var names []string
	if !dropped["ALL"] {
		for _, c := range DefaultCapabilities {
			if !dropped[c] {
				names = append(names, c)
			}
		}
	}
	for _, c := range add {
		n := capName(c)
		if n == "ALL" {
			return nil, errors.New("--cap-add ALL: name the capabilities (most of them are never granted)")
		}
		if !sandbox.KnownCapability(n) {
			return nil, fmt.Errorf("--cap-add %q: unknown capability", c)
		}
		if sandbox.FloorDrops(n) {
			// Asked for by name, so refused rather than dropped: the workload must not run
			// believing it has it.
			return nil, errdefs.Errorf(errdefs.ErrRefusedByFloor, "--cap-add %s: the floor never grants %s (a sandbox keeps only capabilities whose reach ends at its own user namespace)", c, n)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	return &specs.LinuxCapabilities{
		Bounding: names, Effective: slices.Clone(names), Permitted: slices.Clone(names),
	}, nil
}

// dropUngrantedDefaults removes from the effective spec the capabilities the engine asked for on
// the caller's behalf (the defaults, not --cap-add) that the tenant is not granted — granted is
// what policy's constraints name; nil (the policy does not say) changes nothing. It returns the
// raise, or nil when nothing was dropped.
func dropUngrantedDefaults(eff *specs.Spec, req *Request, granted []string) *sandbox.Raise {
	c := eff.Process.Capabilities
	if granted == nil || c == nil {
		return nil
	}
	explicit := map[string]bool{}
	for _, a := range req.CapAdd {
		explicit[capName(a)] = true
	}
	ok := map[string]bool{}
	for _, g := range granted {
		ok[capName(g)] = true
	}
	var kept, gone []string
	for _, n := range c.Bounding {
		if ok[capName(n)] || explicit[capName(n)] {
			kept = append(kept, n)
		} else {
			gone = append(gone, n)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	eff.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: kept, Effective: slices.Clone(kept), Permitted: slices.Clone(kept),
	}
	return &sandbox.Raise{Field: "process.capabilities", From: strings.Join(gone, ","), To: "dropped (default, not granted to the tenant)"}
}

func resources(req *Request) *specs.LinuxResources {
	r := &specs.LinuxResources{}
	if req.Memory > 0 {
		m := req.Memory
		r.Memory = &specs.LinuxMemory{Limit: &m}
	}
	if req.PidsLimit > 0 {
		p := req.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &p}
	}
	if req.CPUs > 0 {
		period := uint64(100000)
		quota := int64(req.CPUs * float64(period))
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	return r
}

// mounts turns -v, --mount and --tmpfs into spec mounts. A bind is recursive so a host tree is seen
// whole; it is read-only unless :rw is asked (docker's default for -v is rw: here it must be
// said), and policy decides whether its source may be written (writable_bind_sources).
func mounts(req *Request) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, v := range req.Volumes {
		m, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for _, v := range req.Mounts {
		m, err := parseMount(v)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for _, t := range req.Tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		if dst == "" {
			return nil, fmt.Errorf("tmpfs %q: want DST[:OPTIONS]", t)
		}
		m := specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec"}}
		if opts != "" {
			for _, o := range strings.Split(opts, ",") {
				if o == "exec" || o == "suid" || o == "dev" {
					// The floor would drop it: said now rather than dropped in silence.
					return nil, fmt.Errorf("tmpfs %q: %s is refused (every tmpfs is nosuid,nodev,noexec)", t, o)
				}
				m.Options = append(m.Options, o)
			}
		}
		out = append(out, m)
	}
	seen := map[string]bool{}
	for _, m := range out {
		d := path.Clean(m.Destination)
		if seen[d] {
			return nil, fmt.Errorf("duplicate mount point %s", d)
		}
		seen[d] = true
	}
	return out, nil
}

// rlimits parses docker's --ulimit NAME=SOFT[:HARD].
func rlimits(list []string) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range list {
		name, val, ok := strings.Cut(u, "=")
		if !ok {
			return nil, fmt.Errorf("ulimit %q: want NAME=SOFT[:HARD]", u)
		}
		softS, hardS, hasHard := strings.Cut(val, ":")
		soft, err := strconv.ParseUint(softS, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ulimit %q: %w", u, err)
		}
		hard := soft
		if hasHard {
			if hard, err = strconv.ParseUint(hardS, 10, 64); err != nil {
				return nil, fmt.Errorf("ulimit %q: %w", u, err)
			}
		}
		if soft > hard {
			return nil, fmt.Errorf("ulimit %q: soft limit above hard limit", u)
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: soft, Hard: hard})
	}
	return out, nil
}

// resolveUser turns "uid[:gid]" or "name[:group]" into ids, names looked up in the image.
func resolveUser(rootfs *imageRoot, spec string) (specs.User, error) {
	if spec == "" {
		return specs.User{}, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	var out specs.User
	uid, err := lookupID(rootfs, "/etc/passwd", u, 2)
	if err != nil {
		return out, fmt.Errorf("user %q: %w", spec, err)
	}
	out.UID = uid
	if hasGroup {
		if out.GID, err = lookupID(rootfs, "/etc/group", g, 2); err != nil {
			return out, fmt.Errorf("group %q: %w", spec, err)
		}
	} else if _, err := strconv.ParseUint(u, 10, 32); err != nil {
		out.GID, _ = lookupID(rootfs, "/etc/passwd", u, 3) // the user's primary group
	}
	return out, nil
}

// lookupID returns a numeric id as is, or field `field` of the line naming it in the image file.
func lookupID(rootfs *imageRoot, file, name string, field int) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	f, err := openInRoot(rootfs, file)
	if err != nil {
		return 0, fmt.Errorf("no %s in the image to look %q up in: %w", file, name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) > field && parts[0] == name {
			n, err := strconv.ParseUint(parts[field], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("%s: bad id for %q", file, name)
			}
			return uint32(n), nil
		}
	}
	return 0, fmt.Errorf("%q not found in the image's %s", name, file)
}
