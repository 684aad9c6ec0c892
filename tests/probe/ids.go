package main

import (
	"bulwark.dev/bulwark/tests/internal/report"

	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func ids() (*report.IDs, error) {
	groups, err := unix.Getgroups()
	if err != nil {
		return nil, fmt.Errorf("getgroups: %w", err)
	}
	r := &report.IDs{UID: unix.Getuid(), EUID: unix.Geteuid(), GID: unix.Getgid(), EGID: unix.Getegid(), Groups: groups}
	if r.UIDMap, err = readIDMap("/proc/self/uid_map"); err != nil {
		return r, err
	}
	if r.GIDMap, err = readIDMap("/proc/self/gid_map"); err != nil {
		return r, err
	}
	b, _ := os.ReadFile("/proc/self/setgroups")
	r.SetGroups = strings.TrimSpace(string(b))
	return r, nil
}

func readIDMap(path string) ([]report.IDMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []report.IDMap
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var m report.IDMap
		var v [3]uint64
		for i := range f {
			if v[i], err = strconv.ParseUint(f[i], 10, 32); err != nil {
				return nil, fmt.Errorf("parse %s: %w", path, err)
			}
		}
		m.Inside, m.Outside, m.Count = uint32(v[0]), uint32(v[1]), uint32(v[2])
		out = append(out, m)
	}
	return out, nil
}

// procStatus reads /proc/self/status into a map of field name to value.
func procStatus() (map[string]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

func caps() (*report.Caps, error) {
	st, err := procStatus()
	if err != nil {
		return nil, err
	}
	var c report.Caps
	for name, dst := range map[string]*uint64{"CapInh": &c.Inh, "CapPrm": &c.Prm, "CapEff": &c.Eff, "CapBnd": &c.Bnd, "CapAmb": &c.Amb} {
		v, err := strconv.ParseUint(st[name], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("parse %s %q: %w", name, st[name], err)
		}
		*dst = v
	}
	return &c, nil
}

func status() (*report.Status, error) {
	st, err := procStatus()
	if err != nil {
		return nil, err
	}
	s := &report.Status{Pid: os.Getpid(), PPid: os.Getppid()}
	s.NoNewPrivs, _ = strconv.Atoi(st["NoNewPrivs"])
	s.Seccomp, _ = strconv.Atoi(st["Seccomp"])
	s.SeccompFilters, _ = strconv.Atoi(st["Seccomp_filters"])
	d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	if err == nil {
		s.Dumpable = d
	}
	s.Exe, _ = os.Readlink("/proc/self/exe")
	if b, err := os.ReadFile("/proc/self/attr/current"); err != nil {
		s.Label = "error: " + errName(err)
	} else {
		s.Label = strings.TrimRight(string(b), "\x00\n")
	}
	return s, nil
}

func namespaces() (map[string]string, error) {
	ents, err := os.ReadDir("/proc/self/ns")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/ns/" + e.Name())
		if err != nil {
			m[e.Name()] = "error: " + err.Error()
			continue
		}
		m[e.Name()] = l
	}
	return m, nil
}

var rlimitNames = map[string]int{
	"as": unix.RLIMIT_AS, "core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
	"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
	"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
}

func rlimits() map[string]report.Rlimit {
	m := map[string]report.Rlimit{}
	for name, res := range rlimitNames {
		var rl unix.Rlimit
		// The Go runtime raises the soft nofile limit to the hard one at start, so tests should
		// judge nofile by Max.
		if err := unix.Prlimit(0, res, nil, &rl); err != nil {
			continue
		}
		m[name] = report.Rlimit{Cur: lim(rl.Cur), Max: lim(rl.Max)}
	}
	return m
}

func lim(v uint64) int64 {
	if v == unix.RLIM_INFINITY {
		return -1
	}
	return int64(v)
}

func host() (*report.Host, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, err
	}
	return &report.Host{Hostname: unix.ByteSliceToString(u.Nodename[:]), Domainname: unix.ByteSliceToString(u.Domainname[:])}, nil
}

// etc returns the content of the files the runtime generates.
func etc() map[string]string {
	m := map[string]string{}
	for _, p := range []string{"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"} {
		b, err := os.ReadFile(p)
		if err != nil {
			m[p] = "error: " + errName(err)
			continue
		}
		m[p] = string(b)
	}
	return m
}

// owners reports who owns a few files of the image, as this process sees them: with an
// identity-free mapping done right, the image's root files belong to the container's root.
func owners() map[string]string {
	m := map[string]string{}
	for _, p := range []string{"/", "/bin/busybox", "/bin/probe", "/etc/passwd"} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			m[p] = "error: " + errName(err)
			continue
		}
		m[p] = fmt.Sprintf("%d:%d", st.Uid, st.Gid)
	}
	return m
}
