package testenv

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// SpecOpt changes a spec built by Spec.
type SpecOpt func(*specs.Spec)

// Spec returns a spec that asks for as little as possible: a process, a hostname, and new pid,
// network, ipc and uts namespaces (without them a spec asks for the host's, which the floor
// refuses). No user, mount or cgroup namespace, mounts, capabilities, seccomp or limits:
// everything a test then sees in the sandbox comes from the floor.
func Spec(args []string, opts ...SpecOpt) *specs.Spec {
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin:/usr/bin:/sbin", "HOME=/root"},
			Cwd:  "/",
		},
		Hostname: "bulwark-test",
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		}},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// RuncSpec returns what `runc spec` generates (namespaces without a user namespace, its default
// capabilities AUDIT_WRITE, KILL and NET_BIND_SERVICE, its mounts and masked paths): a typical
// caller's spec that the floor must raise.
func RuncSpec(args []string, opts ...SpecOpt) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	s := Spec(args)
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}}
	s.Process.NoNewPrivileges = true
	s.Hostname = "runc"
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: "pid"}, {Type: "network"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "cgroup"}}
	s.Linux.MaskedPaths = []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}
	s.Linux.ReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
	for _, o := range opts {
		o(s)
	}
	return s
}

// WithCaps sets bounding, effective and permitted to caps (names like "CAP_CHOWN").
func WithCaps(caps ...string) SpecOpt {
	return func(s *specs.Spec) {
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
}

// WithCwd sets the process's working directory.
func WithCwd(cwd string) SpecOpt { return func(s *specs.Spec) { s.Process.Cwd = cwd } }

// WithHostname sets the hostname.
func WithHostname(h string) SpecOpt { return func(s *specs.Spec) { s.Hostname = h } }

// WithMount appends a mount.
func WithMount(m specs.Mount) SpecOpt {
	return func(s *specs.Spec) { s.Mounts = append(s.Mounts, m) }
}

// WithMemoryLimit sets the memory limit in bytes.
func WithMemoryLimit(n int64) SpecOpt {
	return func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &n}
	}
}

// WithPidsLimit sets the pids limit.
func WithPidsLimit(n int64) SpecOpt {
	return func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &n}
	}
}
