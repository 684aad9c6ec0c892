package runccli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func specVersion() string { return specs.Version }

func newSpecCmd() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:         "spec [flags]",
		Annotations: map[string]string{rootlessOK: ""},
		Short:       "write a default config.json whose every field already meets the floor",
		Args:        cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("file %s exists: remove it first", path)
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("check %s: %w", path, err)
			}
			data, err := json.MarshalIndent(defaultSpec(rootless), "", "\t")
			if err != nil {
				return fmt.Errorf("encode spec: %w", err)
			}
			// O_EXCL: never follow or replace something created since the check above.
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return fmt.Errorf("create %s: %w", path, err)
			}
			if _, err := f.Write(append(data, '\n')); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", path, err)
			}
			return f.Close()
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "directory to write config.json to")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "map only the caller's uid and gid, as runc spec --rootless")
	return cmd
}

// defaultSpec is runc's default spec changed so the floor raises nothing: a user namespace and a cgroup
// namespace, only grantable capabilities and none ambient, a read-only root with writable tmpfs
// mounts, the floor's masked and read-only paths, finite rlimits and limits, no_new_privs. The floor
// applies all of this anyway; writing it out makes `state` show no raises but one: the floor's
// seccomp profile is loaded for every container and is not copied into the spec, because a profile
// in the spec is stacked on top of it and would run the same filter twice per system call.
func defaultSpec(rootless bool) *specs.Spec {
	caps := []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"}
	tmpfs := func(dst, mode string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=" + mode, "size=65536k"}}
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
				{Type: "RLIMIT_NPROC", Hard: 1024, Soft: 1024},
				{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "bulwark",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "noexec", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: []string{"ro", "nosuid", "nodev", "noexec"}},
			tmpfs("/tmp", "1777"),
			tmpfs("/run", "755"),
			tmpfs("/var/tmp", "1777"),
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
				Memory:  &specs.LinuxMemory{Limit: int64Ptr(512 << 20), Swap: int64Ptr(512 << 20)},
				Pids:    &specs.LinuxPids{Limit: int64Ptr(1024)},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
				{Type: specs.UserNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
				"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if rootless {
		// As runc spec --rootless: map only the caller's ids. The floor still replaces the mapping
		// with the tenant's range when it runs as root.
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
		s.Linux.Resources = nil
	}
	return s
}

func int64Ptr(v int64) *int64 { return &v }
