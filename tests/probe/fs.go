package main

import (
	"bulwark.dev/bulwark/tests/internal/report"

	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func mounts() ([]report.Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []report.Mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line without separator: %q", sc.Text())
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 6 || len(b) < 3 {
			return nil, fmt.Errorf("short mountinfo line: %q", sc.Text())
		}
		m := report.Mount{Dev: a[2], Root: unescape(a[3]), Mountpoint: unescape(a[4]), Options: strings.Split(a[5], ","),
			FSType: b[0], Source: unescape(b[1]), Super: strings.Split(b[2], ",")}
		m.ID, _ = strconv.Atoi(a[0])
		m.Parent, _ = strconv.Atoi(a[1])
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space …).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fds lists open descriptors with raw syscalls: os.Open would start the Go poller, whose epoll
// descriptor would then be reported as if the sandbox had leaked it.
func fds() (map[string]string, error) {
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /proc/self/fd: %w", err)
	}
	defer unix.Close(dfd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(dfd, buf)
		if err != nil {
			return nil, fmt.Errorf("read /proc/self/fd: %w", err)
		}
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	m := map[string]string{}
	for _, n := range names {
		if n == strconv.Itoa(dfd) {
			continue
		}
		l, err := os.Readlink("/proc/self/fd/" + n)
		if err != nil {
			l = "error: " + errName(err)
		}
		if goRuntimeCgroupFile(l) {
			continue
		}
		m[n] = l
	}
	return m, nil
}

// goRuntimeCgroupFile reports whether p is a cgroup CPU limit file the probe's own Go runtime
// keeps open (Go 1.25 and later adjust GOMAXPROCS to the container's CPU limit and re-read it),
// not a descriptor the sandbox passed in.
func goRuntimeCgroupFile(p string) bool {
	if !strings.HasPrefix(p, "/sys/fs/cgroup/") {
		return false
	}
	switch filepath.Base(p) {
	case "cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us":
		return true
	}
	return false
}

func cwd() *report.Cwd {
	c := &report.Cwd{}
	p, err := unix.Getwd()
	if err != nil {
		c.Error = errName(err)
	}
	c.Path = p
	var sfs unix.Statfs_t
	if err := unix.Statfs(".", &sfs); err == nil {
		c.FSMagic = fmt.Sprintf("%#x", sfs.Type)
	}
	if ents, err := os.ReadDir("."); err == nil {
		for i, e := range ents {
			if i == 20 {
				break
			}
			c.Entries = append(c.Entries, e.Name())
		}
	}
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		c.Error = "stat /: " + errName(err)
		return c
	}
	fd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		c.Error = "open .: " + errName(err)
		return c
	}
	for i := 0; i < 256; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			break
		}
		if st.Dev == root.Dev && st.Ino == root.Ino {
			c.InRoot, c.UpSteps = true, i
			break
		}
		up, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		var ust unix.Stat_t
		_ = unix.Fstat(up, &ust)
		unix.Close(fd)
		fd = up
		if ust.Dev == st.Dev && ust.Ino == st.Ino {
			break // reached a root that is not ours
		}
	}
	unix.Close(fd)
	return c
}

func cgroup() (*report.Cgroup, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	c := &report.Cgroup{Lines: strings.Split(strings.TrimSpace(string(b)), "\n"), Limits: map[string]string{}}
	for _, p := range []string{
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/pids/pids.max",
		"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max",
	} {
		if b, err := os.ReadFile(p); err == nil {
			c.Limits[p] = strings.TrimSpace(string(b))
		}
	}
	// Every cgroupfs visible inside, and whom its root lists: a process outside this pid
	// namespace shows as pid 0.
	ms, err := mounts()
	if err != nil {
		return nil, err
	}
	c.Procs = map[string][]int{}
	for _, m := range ms {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(m.Mountpoint, "cgroup.procs"))
		if err != nil {
			continue
		}
		pids := []int{}
		for _, f := range strings.Fields(string(b)) {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
		c.Procs[m.Mountpoint] = pids
	}
	return c, nil
}

func interfaces() ([]report.Iface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []report.Iface
	for _, i := range ifs {
		out = append(out, report.Iface{Name: i.Name, Up: i.Flags&net.FlagUp != 0, Flags: i.Flags.String()})
	}
	return out, nil
}

// writablePaths are directories the floor keeps read-only or writable; each is tested by creating
// (and removing) a uniquely named file in it.
var writablePaths = []string{"/", "/etc", "/usr", "/bin", "/root", "/tmp", "/run", "/var/tmp", "/dev",
	"/dev/shm", "/proc/sys", "/proc/sys/kernel", "/sys", "/sys/fs/cgroup", "/proc"}

// writable maps each path to "" when a file could be created in it, else to the errno name.
func writable() map[string]string {
	m := map[string]string{}
	name := fmt.Sprintf(".bulwark-probe-%d", os.Getpid())
	for _, d := range writablePaths {
		p := filepath.Join(d, name)
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if err != nil {
			m[d] = errName(err)
			continue
		}
		unix.Close(fd)
		unix.Unlink(p)
		m[d] = ""
	}
	// Kernel control files: only opened for writing, never written.
	for _, p := range []string{"/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches", "/sys/kernel/uevent_helper", "/proc/sysrq-trigger"} {
		m[p] = openWrite(p)
	}
	return m
}

// openWrite opens p for writing without writing and reports "" or the errno name.
func openWrite(p string) string {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return errName(err)
	}
	unix.Close(fd)
	return ""
}

var maskedPaths = []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug",
	"/proc/sysrq-trigger", "/proc/latency_stats", "/proc/acpi", "/proc/scsi", "/sys/firmware",
	"/proc/interrupts", "/sys/devices/virtual/powercap"}

func masked() map[string]report.Masked {
	m := map[string]report.Masked{}
	for _, p := range maskedPaths {
		var r report.Masked
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			r.Error = errName(err)
			m[p] = r
			continue
		}
		r.Exists = true
		r.CharDev = st.Mode&unix.S_IFMT == unix.S_IFCHR
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			r.Dir = true
			ents, err := os.ReadDir(p)
			if err != nil {
				r.Error = errName(err)
			}
			r.Entries = len(ents)
		} else if p != "/proc/sysrq-trigger" { // write-only control file: never read or written
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
			if err != nil {
				r.Error = errName(err)
			} else {
				buf := make([]byte, 4096)
				n, err := unix.Read(fd, buf)
				if err != nil {
					r.Error = errName(err)
				}
				r.Bytes = max(n, 0)
				unix.Close(fd)
			}
		} else {
			r.WriteOpen = openWrite(p)
		}
		m[p] = r
	}
	return m
}

func dev() (map[string]report.DevEntry, error) {
	ents, err := os.ReadDir("/dev")
	if err != nil {
		return nil, err
	}
	m := map[string]report.DevEntry{}
	for _, e := range ents {
		p := "/dev/" + e.Name()
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			m[e.Name()] = report.DevEntry{Type: "error: " + errName(err)}
			continue
		}
		d := report.DevEntry{}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			d.Type = "char"
		case unix.S_IFBLK:
			d.Type = "block"
		case unix.S_IFDIR:
			d.Type = "dir"
		case unix.S_IFLNK:
			d.Type = "link"
			d.Link, _ = os.Readlink(p)
		case unix.S_IFREG:
			d.Type = "file"
		default:
			d.Type = "other"
		}
		if d.Type == "char" || d.Type == "block" {
			d.Major, d.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		}
		m[e.Name()] = d
	}
	return m, nil
}

// errName turns an error into its errno name (EPERM …) when it wraps one.
func errName(err error) string {
	if err == nil {
		return ""
	}
	var en unix.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
		return fmt.Sprintf("errno%d", int(en))
	}
	return err.Error()
}
