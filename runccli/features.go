package runccli

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"

	"bulwark.dev/bulwark/sandbox"
)

func newFeaturesCmd() *cobra.Command {
	return &cobra.Command{
		Use:         "features",
		Annotations: map[string]string{rootlessOK: ""},
		Short:       "print what this runtime recognizes (OCI features document)",
		Args:        cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return printJSON(runtimeFeatures(), "    ")
		},
	}
}

// allCapabilities are the capability names recognized in a spec. Recognized is not granted: the floor
// refuses the forbidden ones and drops those outside its grantable set.
var allCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

func runtimeFeatures() *features.Features {
	yes, no := true, false
	f := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		// Hooks run on the host only when policy allows the file (path and sha256 digest); the
		// two phases that run inside the container's namespaces are refused.
		Hooks: []string{"prestart", "createRuntime", "poststart", "poststop"},
		MountOptions: []string{
			"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
			"mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime",
			"nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount", "ro",
			"rprivate", "rshared", "rslave", "rw", "shared", "slave", "strictatime", "suid", "symfollow",
			"sync", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"},
			Capabilities: allCapabilities,
			Cgroup:       &features.Cgroup{V1: &yes, V2: &yes, Systemd: &no, SystemdUser: &no, Rdma: &no},
			Seccomp: &features.Seccomp{
				Enabled: &yes,
				Actions: []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
					"SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP"},
				Operators: []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
					"SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				Archs:          []string{"SCMP_ARCH_X86_64"},
				KnownFlags:     []string{"SECCOMP_FILTER_FLAG_TSYNC"},
				SupportedFlags: []string{"SECCOMP_FILTER_FLAG_TSYNC"},
			},
			Apparmor: &features.Apparmor{Enabled: &yes},
			// Namespaces and cgroups are Bulwark's own: joining existing ones (paths) is refused.
			Selinux:         &features.Selinux{Enabled: &yes},
			IntelRdt:        &features.IntelRdt{Enabled: &no},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &yes}},
			NetDevices:      &features.NetDevices{Enabled: &no},
		},
		Annotations: map[string]string{
			"dev.bulwark.runc.version": version,
			"dev.bulwark.hooks":        "prestart, createRuntime, poststart and poststop run on the host when policy's hook_allowlist names the file (path and sha256); any other hook refuses the create; createContainer and startContainer are refused",
			// The floor has no off switch: every container gets all of it whatever the spec asks.
			"dev.bulwark.floor": "userns,namespaces,readonly-rootfs,masked-paths,caps,no-new-privs,seccomp,mac,cgroups",
		},
	}
	// The version this build's seccomp compiler links (stamped at build time: the runtime itself
	// links no libseccomp); an unstamped build does not know it and says nothing.
	if v := sandbox.LibseccompVersion(); v != "" {
		f.Annotations["io.github.seccomp.libseccomp.version"] = v
	}
	return f
}
