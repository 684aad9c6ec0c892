package integration

import (
	"bufio"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/report"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestFloorFromInside runs the probe in a sandbox whose spec asks for nothing but a process and a
// hostname, and asserts every floor item on what the probe sees.
func TestFloorFromInside(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-floor")
	spec := testenv.Spec(probe("all"), testenv.WithHostname("floor-host"))
	res, err := e.RT.Floor(spec)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("Floor: %v", err)
	}
	r, c := e.Run(spec)
	requireAll(t, r)
	st := c.MustState()

	t.Run("userns/non-identity-map", func(t *testing.T) {
		for name, maps := range map[string][]report.IDMap{"uid": r.IDs.UIDMap, "gid": r.IDs.GIDMap} {
			if len(maps) != 1 {
				t.Fatalf("%s_map has %d lines, want 1: %+v", name, len(maps), maps)
			}
			m := maps[0]
			if m.Inside != 0 || m.Outside == 0 || m.Count == 0 || m.Count == 4294967295 {
				t.Errorf("%s_map %+v: container 0 must map to a non-zero host id over a bounded range", name, m)
			}
			// Subordinate ranges start at or above 65536 so no host account is reused.
			if m.Outside < 65536 {
				t.Errorf("%s_map maps container root to host id %d, below the subordinate ranges", name, m.Outside)
			}
		}
		if r.IDs.UIDMap[0].Outside != st.UIDBase || r.IDs.GIDMap[0].Outside != st.GIDBase || r.IDs.UIDMap[0].Count != st.Size {
			t.Errorf("maps %+v/%+v disagree with State (uidBase %d gidBase %d size %d)", r.IDs.UIDMap, r.IDs.GIDMap, st.UIDBase, st.GIDBase, st.Size)
		}
		if r.IDs.UID != 0 || r.IDs.EUID != 0 {
			t.Errorf("process uid %d/%d, want container root", r.IDs.UID, r.IDs.EUID)
		}
	})

	t.Run("namespaces/all-new", func(t *testing.T) {
		host := testenv.HostNS(t)
		for _, ns := range []string{"user", "mnt", "pid", "ipc", "uts", "cgroup", "net"} {
			in := r.NS[ns]
			if in == "" || in == host[ns] {
				t.Errorf("%s namespace %q is the host's (%q)", ns, in, host[ns])
			}
		}
	})

	t.Run("net/loopback-only-up", func(t *testing.T) {
		if len(r.Net) != 1 || r.Net[0].Name != "lo" || !r.Net[0].Up {
			t.Errorf("interfaces %+v, want only lo, up", r.Net)
		}
	})

	t.Run("rootfs/read-only", func(t *testing.T) {
		m := r.MountAt("/")
		if m == nil || !m.Has("ro") {
			t.Fatalf("root mount %+v is not read-only", m)
		}
		for _, p := range []string{"/", "/etc", "/bin", "/root"} {
			if got := r.Writable[p]; got != "EROFS" {
				t.Errorf("creating a file in %s: %q, want EROFS", p, got)
			}
		}
	})

	t.Run("rootfs/ownership-matches-mapping", func(t *testing.T) {
		// The image's files belong to host root; through the mapping (idmapped mount) they must
		// appear as the container's root, not as the overflow id 65534.
		for p, o := range r.Owners {
			if o != "0:0" {
				t.Errorf("%s is owned by %s inside, want 0:0", p, o)
			}
		}
		if len(r.Owners) == 0 {
			t.Error("owners not probed")
		}
	})

	t.Run("rootfs/pivot-root-no-host-paths", func(t *testing.T) {
		hostRoot := hostRootMount(t)
		for _, m := range r.Mounts {
			if m.Dev == hostRoot.dev && m.Root == "/" {
				t.Errorf("host root filesystem visible at %s (%+v): old root not detached", m.Mountpoint, m)
			}
			if strings.HasPrefix(m.Mountpoint, c.Bundle) || strings.HasPrefix(m.Mountpoint, "/work") {
				t.Errorf("host path mounted inside: %+v", m)
			}
		}
		if r.Cwd == nil || !r.Cwd.InRoot || r.Cwd.Path != "/" {
			t.Errorf("cwd %+v, want / inside the root", r.Cwd)
		}
	})

	t.Run("tmpfs/nosuid-nodev-noexec-sized", func(t *testing.T) {
		for _, p := range []string{"/tmp", "/run", "/var/tmp"} {
			m := r.MountAt(p)
			if m == nil || m.Mountpoint != p || m.FSType != "tmpfs" {
				t.Errorf("%s is not a tmpfs mount: %+v", p, m)
				continue
			}
			for _, o := range []string{"nosuid", "nodev", "noexec", "rw"} {
				if !m.Has(o) {
					t.Errorf("%s lacks %s: %v %v", p, o, m.Options, m.Super)
				}
			}
			if !hasPrefixed(m.Super, "size=") {
				t.Errorf("%s tmpfs has no size limit: %v", p, m.Super)
			}
			if got := r.Writable[p]; got != "" {
				t.Errorf("%s not writable: %s", p, got)
			}
		}
	})

	t.Run("masked-paths", func(t *testing.T) {
		for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
			"/proc/latency_stats", "/proc/acpi", "/proc/scsi", "/sys/firmware"} {
			m, ok := r.Masked[p]
			switch {
			case !ok:
				t.Errorf("%s not probed", p)
			case !m.Exists:
				t.Logf("%s: absent on this kernel (%s)", p, m.Error)
			case m.Dir && m.Entries != 0:
				t.Errorf("%s shows %d entries, want a masked (empty) directory", p, m.Entries)
			case !m.Dir && m.Bytes != 0:
				t.Errorf("%s reads %d bytes, want masked", p, m.Bytes)
			}
		}
		if m := r.Masked["/proc/sysrq-trigger"]; m.Exists && m.WriteOpen == "" && !m.CharDev {
			t.Errorf("/proc/sysrq-trigger is open for writing and not masked: %+v", m)
		}
	})

	t.Run("readonly-paths", func(t *testing.T) {
		for _, p := range []string{"/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/sys"} {
			m := r.MountAt(p)
			if m == nil || !m.Has("ro") {
				t.Errorf("%s is not on a read-only mount: %+v", p, m)
			}
		}
		for _, p := range []string{"/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches", "/sys"} {
			if r.Writable[p] == "" {
				t.Errorf("%s is writable", p)
			}
		}
		// /proc/sysrq-trigger: absent on kernels without magic SysRq, else read-only or masked.
		if got := r.Writable["/proc/sysrq-trigger"]; got == "" && !r.Masked["/proc/sysrq-trigger"].CharDev {
			t.Errorf("/proc/sysrq-trigger opens for writing")
		}
	})

	t.Run("dev/minimal", func(t *testing.T) {
		// name -> major:minor ("" for directories and links).
		allowed := map[string]string{"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8",
			"urandom": "1:9", "tty": "5:0", "ptmx": "", "pts": "", "shm": "", "mqueue": "", "fd": "",
			"stdin": "", "stdout": "", "stderr": "", "console": "", "core": ""}
		for _, want := range []string{"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm"} {
			if _, ok := r.Dev[want]; !ok {
				t.Errorf("/dev/%s missing", want)
			}
		}
		for name, d := range r.Dev {
			a, ok := allowed[name]
			if !ok {
				t.Errorf("unexpected /dev/%s: %+v", name, d)
				continue
			}
			if d.Type == "block" {
				t.Errorf("block device /dev/%s", name)
			}
			if d.Type == "char" && a != "" && fmt.Sprintf("%d:%d", d.Major, d.Minor) != a {
				t.Errorf("/dev/%s is %d:%d, want %s", name, d.Major, d.Minor, a)
			}
			if name == "ptmx" && d.Type == "char" && (d.Major != 5 || d.Minor != 2) {
				t.Errorf("/dev/ptmx is %d:%d", d.Major, d.Minor)
			}
		}
		if m := r.MountAt("/dev/pts"); m == nil || m.FSType != "devpts" || !m.Has("newinstance") && !m.Has("ptmxmode=666") && !m.Has("ptmxmode=0666") {
			t.Errorf("/dev/pts is not a private devpts: %+v", m)
		}
	})

	t.Run("etc/generated", func(t *testing.T) {
		if got := strings.TrimSpace(r.Etc["/etc/hostname"]); got != "floor-host" {
			t.Errorf("/etc/hostname %q, want floor-host", got)
		}
		if r.Host.Hostname != "floor-host" {
			t.Errorf("uname hostname %q", r.Host.Hostname)
		}
		hosts := r.Etc["/etc/hosts"]
		if !strings.Contains(hosts, "127.0.0.1") || !strings.Contains(hosts, "localhost") {
			t.Errorf("/etc/hosts lacks localhost: %q", hosts)
		}
		if strings.HasPrefix(r.Etc["/etc/resolv.conf"], "error") {
			t.Errorf("/etc/resolv.conf: %s", r.Etc["/etc/resolv.conf"])
		}
		for _, p := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
			if hb, err := os.ReadFile(p); err == nil && len(hb) > 0 && string(hb) == r.Etc[p] && p != "/etc/resolv.conf" {
				t.Errorf("%s is the host's file", p)
			}
			if m := r.MountAt(p); m != nil && m.Mountpoint == p && m.Root == p {
				t.Errorf("%s is a bind mount of the host's %s: %+v", p, p, m)
			}
		}
	})

	t.Run("caps/none-requested-all-empty", func(t *testing.T) {
		cp := r.Caps
		if cp.Inh != 0 || cp.Prm != 0 || cp.Eff != 0 || cp.Bnd != 0 || cp.Amb != 0 {
			t.Errorf("capability sets %+v, want all zero", cp)
		}
	})

	t.Run("no-new-privs-and-seccomp", func(t *testing.T) {
		if r.Status.NoNewPrivs != 1 {
			t.Errorf("NoNewPrivs %d", r.Status.NoNewPrivs)
		}
		if r.Status.Seccomp != 2 || r.Status.SeccompFilters < 1 {
			t.Errorf("Seccomp %d with %d filters, want mode 2 (filter)", r.Status.Seccomp, r.Status.SeccompFilters)
		}
	})

	t.Run("forbidden-operations", func(t *testing.T) { assertForbidden(t, r.Forbidden) })

	t.Run("seccomp/foreign-abi-blocked", func(t *testing.T) {
		// getpid through the i386 entry (int $0x80) succeeds on this host outside a sandbox;
		// the floor's filter allows only the native architecture.
		if r.ABI == nil {
			t.Fatal("abi not probed")
		}
		if *r.ABI != "SIGSYS" {
			t.Errorf("getpid through the i386 ABI: %q, want the process killed with SIGSYS by seccomp", *r.ABI)
		}
	})

	t.Run("landlock/write-outside-writable-mounts", func(t *testing.T) {
		if r.Landlock.ABI < 1 {
			t.Skipf("kernel without Landlock (%s)", r.Landlock.ABIError)
		}
		dev := r.MountAt("/dev")
		if dev == nil || dev.Has("ro") {
			t.Skipf("/dev is read-only (%+v): creating a file there does not reach Landlock", dev)
		}
		// /dev is a writable tmpfs for the filesystem but not a writable mount for the floor.
		if r.Landlock.DevCreate != "EACCES" {
			t.Errorf("creating a file in /dev: %q, want EACCES from Landlock", r.Landlock.DevCreate)
		}
	})

	t.Run("rlimits/defaults", func(t *testing.T) {
		if l := r.Rlimits["core"]; l.Cur != 0 || l.Max != 0 {
			t.Errorf("RLIMIT_CORE %+v, want 0/0", l)
		}
		for _, n := range []string{"nofile", "nproc"} {
			if l := r.Rlimits[n]; l.Max < 0 || l.Cur < 0 {
				t.Errorf("RLIMIT_%s %+v is unlimited", strings.ToUpper(n), l)
			}
		}
	})

	t.Run("fds/only-stdio", func(t *testing.T) {
		for fd, target := range r.FDs {
			if fd != "0" && fd != "1" && fd != "2" {
				t.Errorf("fd %s open in the container: %s", fd, target)
			}
		}
	})

	t.Run("state/raises-equal-dry-run", func(t *testing.T) {
		// Floor is the dry run of Create: the raises it predicts are the ones recorded.
		if !reflect.DeepEqual(res.Raises, st.Raises) {
			t.Errorf("Floor predicted %d raises, State records %d:\n%+v\n%+v", len(res.Raises), len(st.Raises), res.Raises, st.Raises)
		}
	})

	t.Run("state/raises-recorded", func(t *testing.T) {
		want := map[string]bool{"root.readonly false->true": false, "linux.namespaces ->user": false,
			"linux.namespaces ->mount": false}
		for _, rs := range st.Raises {
			k := rs.Field + " " + rs.From + "->" + rs.To
			if _, ok := want[k]; ok {
				want[k] = true
			}
		}
		for k, seen := range want {
			if !seen {
				t.Errorf("raise %q not recorded; State.Raises: %+v", k, st.Raises)
			}
		}
		if st.Tenant != "tenant-floor" {
			t.Errorf("State.Tenant %q", st.Tenant)
		}
	})
}

// assertForbidden checks the errno of every forbidden operation. The expected errno shows which
// layer answered: EPERM from seccomp where the kernel would have said something else (EINVAL …).
func assertForbidden(t *testing.T, f map[string]string) {
	t.Helper()
	// Operations the seccomp floor must answer with EPERM. For most, the kernel itself would
	// answer differently (EINVAL, ENODEV, ENOENT, success) for a process that got past seccomp.
	// socket_mptcp: Landlock and most tooling do not see MPTCP (MACHINE-NOTES): the floor refuses it.
	seccompEPERM := []string{"mount", "umount2", "pivot_root", "fsopen", "open_tree", "unshare_user",
		"clone_newuser", "setns", "name_to_handle_at", "open_by_handle_at", "keyctl", "add_key",
		"request_key", "bpf", "perf_event_open", "ptrace_attach", "kexec_load", "kexec_file_load",
		"init_module", "finit_module", "delete_module", "acct", "swapoff", "iopl", "ioperm",
		"reboot", "ioctl_tiocsti", "ioctl_tioclinux", "socket_netlink_audit", "socket_raw_icmp",
		"socket_packet", "unshare_user_cgroup_mnt", "mount_cgroup_v1", "userfaultfd", "syslog",
		"personality_linux32", "process_vm_readv", "settimeofday", "chroot", "socket_mptcp"}
	for _, op := range seccompEPERM {
		got, ok := f[op]
		if !ok {
			t.Errorf("%s: not probed", op)
			continue
		}
		if got != "EPERM" {
			t.Errorf("%s: %q, want EPERM", op, got)
		}
	}
	// clone3 cannot be filtered by argument, so the floor answers ENOSYS to make libc fall back
	// to clone (whose flags are filtered); EPERM would break glibc's pthread_create.
	if got := f["clone3"]; got != "ENOSYS" {
		t.Errorf("clone3: %q, want ENOSYS", got)
	}
	// Syscalls the allowlist does not name get ENOSYS, so libc falls back as on an older kernel.
	if got := f["statmount_newer"]; got != "ENOSYS" {
		t.Errorf("statmount (not in the allowlist): %q, want ENOSYS", got)
	}
	// io_uring bypasses seccomp for the operations it performs; ENOSYS like a kernel without it.
	if got := f["io_uring_setup"]; got != "ENOSYS" {
		t.Errorf("io_uring_setup: %q, want ENOSYS", got)
	}
	// mknod is allowed by seccomp; Landlock grants no device creation on writable mounts, and its
	// hook runs before the kernel's CAP_MKNOD check (which would say EPERM).
	if got := f["mknod_char"]; got != "EACCES" {
		t.Errorf("mknod of a char device in /tmp: %q, want EACCES from Landlock", got)
	}
	// Blocked by missing capabilities even where seccomp allows the syscall.
	for _, op := range []string{"unshare_net", "unshare_cgroup", "unshare_uts",
		"unshare_ipc", "unshare_pid"} {
		if got := f[op]; got != "EPERM" {
			t.Errorf("%s: %q, want EPERM", op, got)
		}
	}
	// The route socket stays available (ip, DNS resolvers use it).
	if got := f["socket_netlink_route"]; got != "" {
		t.Errorf("socket(AF_NETLINK, NETLINK_ROUTE): %q, want allowed", got)
	}
	for k, v := range f {
		if strings.HasPrefix(k, "release_agent:") && v == "" {
			t.Errorf("%s opened for writing (CVE-2022-0492)", k)
		}
	}
}

// requireAll stops the test when a section of "probe all" is missing, rather than panicking on it.
func requireAll(t *testing.T, r *report.Report) {
	t.Helper()
	if r.IDs == nil || r.Caps == nil || r.Status == nil || r.Cwd == nil || r.Host == nil ||
		r.Cgroup == nil || r.Landlock == nil || r.ABI == nil || r.Forbidden == nil {
		t.Fatalf("probe report incomplete (errors: %v)", r.Errors)
	}
}

func hasPrefixed(opts []string, prefix string) bool {
	for _, o := range opts {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}

type hostMount struct{ dev, root string }

// hostRootMount returns the device and root of the host's "/" mount.
func hostRootMount(t *testing.T) hostMount {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var hm hostMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) > 4 && fl[4] == "/" {
			hm = hostMount{dev: fl[2], root: fl[3]}
		}
	}
	return hm
}
