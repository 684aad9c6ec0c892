// Package procfs reads the kernel's view of a process from a proc tree: its status
// (capabilities, no_new_privs, seccomp), id maps, namespace inodes, mounts, cgroups and limits.
// Every reader takes the proc directory as an argument, so tests run them on a fixture tree.
package procfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// Status is what /proc/PID/status says about a process's privileges.
type Status struct {
	UID            []uint64 // real, effective, saved, filesystem
	CapEff, CapBnd uint64
	CapPrm, CapAmb uint64
	// NoNewPrivs is 1 when no_new_privs is set; Seccomp is 0 (off), 1 (strict) or 2 (filter).
	NoNewPrivs     int
	Seccomp        int
	SeccompFilters int
}

// pidDir is proc/<pid>, or proc/self for pid 0.
func pidDir(proc string, pid int) string {
	if pid == 0 {
		return filepath.Join(proc, "self")
	}
	return filepath.Join(proc, strconv.Itoa(pid))
}

// ReadStatus parses proc/<pid>/status.
func ReadStatus(proc string, pid int) (Status, error) {
	b, err := os.ReadFile(filepath.Join(pidDir(proc, pid), "status"))
	if err != nil {
		return Status{}, fmt.Errorf("read status: %w", err)
	}
	var s Status
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid":
			for f := range strings.FieldsSeq(val) {
				n, perr := strconv.ParseUint(f, 10, 32)
				if perr != nil {
					err = perr
					break
				}
				s.UID = append(s.UID, n)
			}
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(val, 16, 64)
		case "CapBnd":
			s.CapBnd, err = strconv.ParseUint(val, 16, 64)
		case "CapPrm":
			s.CapPrm, err = strconv.ParseUint(val, 16, 64)
		case "CapAmb":
			s.CapAmb, err = strconv.ParseUint(val, 16, 64)
		case "NoNewPrivs":
			s.NoNewPrivs, err = strconv.Atoi(val)
		case "Seccomp":
			s.Seccomp, err = strconv.Atoi(val)
		case "Seccomp_filters":
			s.SeccompFilters, err = strconv.Atoi(val)
		default:
			continue
		}
		if err != nil {
			return Status{}, fmt.Errorf("status field %s %q: %w", key, val, err)
		}
		seen[key] = true
	}
	for _, k := range []string{"CapEff", "CapBnd", "NoNewPrivs", "Seccomp"} {
		if !seen[k] {
			return Status{}, fmt.Errorf("status has no %s field", k)
		}
	}
	return s, nil
}

// IDMap is one line of uid_map or gid_map: Length ids from Inside map to Outside.
type IDMap struct {
	Inside, Outside, Length uint64
}

// ReadIDMap parses proc/<pid>/<file> (uid_map or gid_map).
func ReadIDMap(proc string, pid int, file string) ([]IDMap, error) {
	b, err := os.ReadFile(filepath.Join(pidDir(proc, pid), file))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	var out []IDMap
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s line %q: want 3 fields", file, line)
		}
		var m IDMap
		var errs [3]error
		m.Inside, errs[0] = strconv.ParseUint(f[0], 10, 32)
		m.Outside, errs[1] = strconv.ParseUint(f[1], 10, 32)
		m.Length, errs[2] = strconv.ParseUint(f[2], 10, 33)
		for _, e := range errs {
			if e != nil {
				return nil, fmt.Errorf("%s line %q: %w", file, line, e)
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// Outside maps id inside the namespace to the host, ok false when unmapped.
func Outside(maps []IDMap, id uint64) (uint64, bool) {
	for _, m := range maps {
		if id >= m.Inside && id < m.Inside+m.Length {
			return m.Outside + id - m.Inside, true
		}
	}
	return 0, false
}

// NSInode returns the inode of proc/<pid>/ns/<name> ("user", "mnt", "net", ...), read from the
// link text ("user:[4026531837]").
func NSInode(proc string, pid int, name string) (uint64, error) {
	link, err := os.Readlink(filepath.Join(pidDir(proc, pid), "ns", name))
	if err != nil {
		return 0, fmt.Errorf("namespace %s: %w", name, err)
	}
	_, rest, ok := strings.Cut(link, ":[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, fmt.Errorf("namespace %s: unexpected link %q", name, link)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("namespace %s: %w", name, err)
	}
	return n, nil
}

// Mount is one line of mountinfo.
type Mount struct {
	ID, Parent int
	// Root is the path within the filesystem that is mounted; Point where it is mounted.
	Root, Point string
	// Options are the per-mount options (ro, nosuid, ...); Optional the tagged fields
	// (shared:N, master:N, ...); Super the filesystem's own options.
	Options  []string
	Optional []string
	FSType   string
	Source   string
	Super    []string
}

// Has reports whether the per-mount options include opt.
func (m Mount) Has(opt string) bool {
	for _, o := range m.Options {
		if o == opt {
			return true
		}
	}
	return false
}

// ReadMountinfo parses proc/<pid>/mountinfo.
func ReadMountinfo(proc string, pid int) ([]Mount, error) {
	b, err := os.ReadFile(filepath.Join(pidDir(proc, pid), "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return ParseMountinfo(b)
}

// ParseMountinfo parses mountinfo text (proc(5)) with moby/sys/mountinfo's parser.
func ParseMountinfo(b []byte) ([]Mount, error) {
	infos, err := mountinfo.GetMountsFromReader(bytes.NewReader(b), nil)
	if err != nil {
		return nil, fmt.Errorf("parse mountinfo: %w", err)
	}
	out := make([]Mount, len(infos))
	for i, m := range infos {
		out[i] = Mount{
			ID: m.ID, Parent: m.Parent, Root: m.Root, Point: m.Mountpoint, Options: strings.Split(m.Options, ","),
			Optional: strings.Fields(m.Optional), FSType: m.FSType, Source: m.Source, Super: strings.Split(m.VFSOptions, ","),
		}
	}
	return out, nil
}

// Cgroup is one line of proc/<pid>/cgroup.
type Cgroup struct {
	// Controllers are the v1 controllers of the hierarchy ("memory", "name=systemd"); empty
	// for the v2 hierarchy.
	Controllers []string
	Path        string
}

// ReadCgroups parses proc/<pid>/cgroup.
func ReadCgroups(proc string, pid int) ([]Cgroup, error) {
	b, err := os.ReadFile(filepath.Join(pidDir(proc, pid), "cgroup"))
	if err != nil {
		return nil, fmt.Errorf("read cgroup: %w", err)
	}
	var out []Cgroup
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			return nil, fmt.Errorf("cgroup line %q: malformed", line)
		}
		c := Cgroup{Path: f[2]}
		if f[1] != "" {
			c.Controllers = strings.Split(f[1], ",")
		}
		out = append(out, c)
	}
	return out, nil
}

// Limit is one resource limit of proc/<pid>/limits; -1 is unlimited.
type Limit struct {
	Soft, Hard int64
}

// limitNames maps the rlimit names of the runtime spec to the rows of proc/<pid>/limits.
var limitNames = map[string]string{
	"RLIMIT_CPU": "Max cpu time", "RLIMIT_FSIZE": "Max file size", "RLIMIT_DATA": "Max data size",
	"RLIMIT_STACK": "Max stack size", "RLIMIT_CORE": "Max core file size", "RLIMIT_RSS": "Max resident set",
	"RLIMIT_NPROC": "Max processes", "RLIMIT_NOFILE": "Max open files", "RLIMIT_MEMLOCK": "Max locked memory",
	"RLIMIT_AS": "Max address space", "RLIMIT_LOCKS": "Max file locks", "RLIMIT_SIGPENDING": "Max pending signals",
	"RLIMIT_MSGQUEUE": "Max msgqueue size", "RLIMIT_NICE": "Max nice priority", "RLIMIT_RTPRIO": "Max realtime priority",
	"RLIMIT_RTTIME": "Max realtime timeout",
}

// ReadLimits parses proc/<pid>/limits, keyed by the spec's names (RLIMIT_NOFILE, ...).
func ReadLimits(proc string, pid int) (map[string]Limit, error) {
	b, err := os.ReadFile(filepath.Join(pidDir(proc, pid), "limits"))
	if err != nil {
		return nil, fmt.Errorf("read limits: %w", err)
	}
	rows := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if len(line) > 26 {
			rows[strings.TrimSpace(line[:26])] = line[26:]
		}
	}
	out := map[string]Limit{}
	for spec, row := range limitNames {
		v, ok := rows[row]
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 2 {
			return nil, fmt.Errorf("limits row %q: malformed", row)
		}
		soft, err1 := parseLimit(f[0])
		hard, err2 := parseLimit(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("limits row %q: bad value", row)
		}
		out[spec] = Limit{Soft: soft, Hard: hard}
	}
	return out, nil
}

func parseLimit(s string) (int64, error) {
	if s == "unlimited" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// StartTime returns field 22 (starttime) of proc/<pid>/stat, so a recycled pid is never taken for
// the process a record names.
func StartTime(proc string, pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(pidDir(proc, pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read stat: %w", err)
	}
	// The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: malformed")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}
