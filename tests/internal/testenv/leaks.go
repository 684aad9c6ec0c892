package testenv

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bulwark.dev/bulwark/internal/runroot"
)

// Leaks checks, when the test ends, that nothing it created outlives it: no mount in this mount
// namespace under its directories, no cgroup directory and no process for its containers, no
// container state directory, no id range still held, and nothing naming them in the host's
// state root. Create it BEFORE the containers, so its
// cleanup runs after theirs.
type Leaks struct {
	t         testing.TB
	stateRoot string

	mu   sync.Mutex
	ids  []string // guarded by mu
	dirs []string // guarded by mu
}

// leakGrace is how long teardown may take to settle: a SIGKILLed process leaves its cgroup a
// moment after the kill returns, and a state root's supervisor and network resolvers exit a
// few seconds after the last container (longer on a loaded machine). The wait costs nothing
// when nothing is left.
const leakGrace = 15 * time.Second

// NewLeaks registers the check for a runtime state root (may be empty) and directories the test
// owns (bundles, rootfs).
func NewLeaks(t testing.TB, stateRoot string, dirs ...string) *Leaks {
	l := &Leaks{t: t, stateRoot: stateRoot, dirs: dirs}
	t.Cleanup(l.check)
	return l
}

// Track adds a container id to check.
func (l *Leaks) Track(id string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ids = append(l.ids, id)
	return id
}

// Dir adds a directory whose mounts and processes to check.
func (l *Leaks) Dir(d string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dirs = append(l.dirs, d)
}

// Find returns every leak found now, one line each.
func (l *Leaks) Find() []string { return l.find(false) }

// find is Find; at the test's end (final) it also counts processes still running with a path
// under the test's directories on their command line: a state root's supervisor or network
// resolver, which exit a few seconds after the last container and would otherwise still write
// there while the test's temporary directory is removed. Mid-test they may rightly run.
func (l *Leaks) find(final bool) []string {
	l.mu.Lock()
	ids := append([]string(nil), l.ids...)
	dirs := append([]string(nil), l.dirs...)
	l.mu.Unlock()
	if l.stateRoot != "" {
		// A bulwark state root's per-run state is in its run root (tmpfs).
		dirs = append(dirs, l.stateRoot, runroot.Of(l.stateRoot))
	}
	var out []string
	out = append(out, mountLeaks(dirs, ids)...)
	out = append(out, loopLeaks(dirs)...)
	out = append(out, cgroupLeaks(ids)...)
	out = append(out, processLeaks(dirs, ids)...)
	if final {
		out = append(out, argvLeaks(dirs)...)
	}
	out = append(out, l.stateLeaks(ids)...)
	out = append(out, hostStateLeaks(ids)...)
	return out
}

// loopLeaks lists loop devices whose backing file lies under one of dirs (a sized volume's or a
// writable root's filesystem image).
func loopLeaks(dirs []string) []string {
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if strings.HasPrefix(strings.TrimSpace(string(b)), d+"/") {
				out = append(out, fmt.Sprintf("loop device %s on %s", filepath.Base(filepath.Dir(filepath.Dir(f))), strings.TrimSpace(string(b))))
			}
		}
	}
	return out
}

// hostStateRoot is the runtime's default persistent state root: a test must never write there.
const hostStateRoot = "/var/lib/bulwark"

// hostStateLeaks lists files of the host's state root that name one of the ids.
func hostStateLeaks(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	var out []string
	filepath.WalkDir(hostStateRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		// A holder is an empty file named by its container (holders/<tenant>/<id>@<root digest>).
		if slices.Contains(ids, holderID(d.Name())) {
			out = append(out, fmt.Sprintf("id range still held for %s: %s", d.Name(), p))
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, id := range ids {
			if strings.Contains(string(b), id) {
				out = append(out, fmt.Sprintf("host state root names %s: %s", id, p))
			}
		}
		return nil
	})
	return out
}

func (l *Leaks) check() {
	l.t.Helper()
	if found := l.settle(true); len(found) != 0 {
		l.t.Errorf("leaked after the test:\n  %s", strings.Join(found, "\n  "))
	}
}

// AssertNone fails the test now unless every leak clears within the grace period.
func (l *Leaks) AssertNone(t testing.TB) {
	t.Helper()
	if found := l.settle(false); len(found) != 0 {
		t.Fatalf("left behind:\n  %s", strings.Join(found, "\n  "))
	}
}

// settle polls find until it is empty or the grace period is over, and returns the last result.
func (l *Leaks) settle(final bool) []string {
	deadline := time.Now().Add(leakGrace)
	for {
		found := l.find(final)
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// mountLeaks lists mounts of this namespace whose mountpoint or source path lies under one of
// dirs or names one of the ids.
func mountLeaks(dirs, ids []string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return []string{"read mountinfo: " + err.Error()}
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := fields[4]
		for _, d := range dirs {
			if under(mp, d) {
				out = append(out, "mount: "+line)
			}
		}
		for _, id := range ids {
			if strings.Contains(line, id) {
				out = append(out, "mount: "+line)
			}
		}
	}
	return out
}

// cgroupLeaks lists cgroup directories (v1 hierarchies and the unified one) whose path names an id.
func cgroupLeaks(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	var out []string
	for _, h := range hier {
		base := strings.Count(h, "/")
		filepath.WalkDir(h, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if strings.Count(p, "/")-base > 4 {
				return filepath.SkipDir
			}
			for _, id := range ids {
				if strings.Contains(d.Name(), id) {
					out = append(out, "cgroup: "+p)
					return filepath.SkipDir
				}
			}
			return nil
		})
	}
	return out
}

// processLeaks lists processes whose cwd or root lies under one of dirs, or whose cgroup names
// one of the ids.
func processLeaks(dirs, ids []string) []string {
	var out []string
	for _, pid := range otherPids() {
		for _, link := range []string{"cwd", "root"} {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/%s", pid, link))
			if err != nil {
				continue
			}
			for _, d := range dirs {
				if under(l, d) {
					out = append(out, fmt.Sprintf("process %d (%s) %s %s", pid, comm(pid), link, l))
				}
			}
		}
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			continue
		}
		for _, id := range ids {
			if strings.Contains(string(cg), id) {
				out = append(out, fmt.Sprintf("process %d (%s) in cgroup of %s", pid, comm(pid), id))
				break
			}
		}
	}
	return out
}

// stateLeaks lists container state directories still present and id-range files still naming
// a container.
func (l *Leaks) stateLeaks(ids []string) []string {
	if l.stateRoot == "" {
		return nil
	}
	var out []string
	for _, id := range ids {
		for _, root := range []string{l.stateRoot, runroot.Of(l.stateRoot)} {
			p := filepath.Join(root, "containers", id)
			if _, err := os.Lstat(p); err == nil {
				out = append(out, "state dir: "+p)
			}
		}
	}
	filepath.WalkDir(filepath.Join(l.stateRoot, "idmap"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		// A holder is an empty file named by its container (holders/<tenant>/<id>@<root digest>).
		if slices.Contains(ids, holderID(d.Name())) {
			out = append(out, fmt.Sprintf("id range still held for %s: %s", d.Name(), p))
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, id := range ids {
			if !strings.Contains(string(b), id) {
				continue
			}
			if strings.HasPrefix(d.Name(), ".") {
				out = append(out, fmt.Sprintf("stale temporary file naming %s (an interrupted write was never cleaned up): %s", id, p))
			} else {
				out = append(out, fmt.Sprintf("id range still held for %s in %s", id, p))
			}
		}
		return nil
	})
	return out
}

func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// argvLeaks lists processes with a command-line argument naming a path under one of dirs.
func argvLeaks(dirs []string) []string {
	var out []string
	for _, pid := range otherPids() {
		if arg := argUnder(pid, dirs); arg != "" {
			out = append(out, fmt.Sprintf("process %d (%s) still running with %s", pid, comm(pid), arg))
		}
	}
	return out
}

// otherPids lists the pids of every process but this one.
func otherPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// argUnder returns the first command-line argument of pid that is a path under one of dirs
// (alone or as a --flag=value), or "".
func argUnder(pid int, dirs []string) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	for _, arg := range strings.Split(string(b), "\x00") {
		if _, v, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(arg, "-") {
			arg = v
		}
		for _, d := range dirs {
			if under(arg, d) {
				return arg
			}
		}
	}
	return ""
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// holderID is the container id a range holder's file name names: <id>@<digest of its runtime's
// root> (an older runtime's holder is the id alone).
func holderID(name string) string {
	id, _, _ := strings.Cut(name, "@")
	return id
}
