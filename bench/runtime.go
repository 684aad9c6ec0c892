package bench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"bulwark.dev/bulwark/bench/internal/procfs"
	"bulwark.dev/bulwark/sandbox"
)

// Every probe here reads the kernel's view of a container's init process (/proc/PID), never a
// runtime's record of what it meant to apply. The host's namespaces are the scanner's own
// (/proc/self/ns): run bench on the host, not in a container (pid 1's links need CAP_SYS_PTRACE,
// which a confined root may lack).

// probeDiscovery reports the container sources that could not be listed: an engine that does
// not answer must not pass as "no containers". A source only root may read (the state root) is a
// skip of a non-root scan.
func probeDiscovery(e *Env, c *Control) Outcome {
	if len(e.discoveryErrs) == 0 {
		return pass("%d running containers from %s", len(e.Containers), strings.Join(e.Targets, ", "))
	}
	var msgs []string
	denied := 0
	for _, err := range e.discoveryErrs {
		msgs = append(msgs, err.Error())
		if errors.Is(err, fs.ErrPermission) {
			denied++
		}
	}
	if denied == len(e.discoveryErrs) && e.Euid != 0 {
		return Outcome{Status: Skip, Actual: "needs root: containers could not be listed", Details: msgs}
	}
	return Outcome{Status: Fail, Actual: "containers could not be listed", Details: msgs}
}

func probeContainerUserns(e *Env, c *Control, ct *Container) Outcome {
	var p struct {
		MinHostID uint64 `json:"minHostID"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	own, err := procfs.NSInode(e.Proc, ct.Pid, "user")
	if err != nil {
		return e.errOutcome(c, err)
	}
	host, err := procfs.NSInode(e.Proc, 0, "user")
	if err != nil {
		return e.errOutcome(c, err)
	}
	if own == host {
		return fail("the host's user namespace (no user namespace)")
	}
	for _, f := range []string{"uid_map", "gid_map"} {
		maps, err := procfs.ReadIDMap(e.Proc, ct.Pid, f)
		if err != nil {
			return e.errOutcome(c, err)
		}
		root, ok := procfs.Outside(maps, 0)
		if ok && root < p.MinHostID {
			return fail("%s maps container 0 to host id %d", f, root)
		}
		for _, m := range maps {
			if m.Outside < p.MinHostID {
				return fail("%s maps container %d..%d to host ids from %d", f, m.Inside, m.Inside+m.Length-1, m.Outside)
			}
		}
	}
	maps, _ := procfs.ReadIDMap(e.Proc, ct.Pid, "uid_map")
	root, _ := procfs.Outside(maps, 0)
	return pass("own user namespace, container 0 → host %d", root)
}

// nsProcName maps the runtime spec's namespace types to /proc/PID/ns names.
var nsProcName = map[string]string{
	"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
	"cgroup": "cgroup", "time": "time",
}

func probeContainerNamespaces(e *Env, c *Control, ct *Container) Outcome {
	var shared, own []string
	for _, t := range e.Floor.Namespaces {
		if t == "user" {
			continue // its own control, with the id map
		}
		name, ok := nsProcName[t]
		if !ok {
			return fail("the floor names namespace %q, unknown to the scanner", t)
		}
		mine, err := procfs.NSInode(e.Proc, ct.Pid, name)
		if err != nil {
			return e.errOutcome(c, err)
		}
		host, err := procfs.NSInode(e.Proc, 0, name)
		if err != nil {
			return e.errOutcome(c, err)
		}
		if mine == host {
			shared = append(shared, name)
		} else {
			own = append(own, name)
		}
	}
	if len(shared) > 0 {
		return fail("shares the host's %s namespace", strings.Join(shared, ", "))
	}
	return pass("own %s namespaces", strings.Join(own, ", "))
}

// capsOutside lists the capabilities of mask the floor never keeps (not grantable), marking
// those it forbids outright.
func (e *Env) capsOutside(mask uint64) []string {
	var out []string
	for _, n := range sandbox.CapabilityNames(mask) {
		switch {
		case slices.Contains(e.Floor.Forbidden, n):
			out = append(out, n+" (forbidden)")
		case !slices.Contains(e.Floor.Grantable, n):
			out = append(out, n)
		}
	}
	return out
}

func capsProbe(e *Env, c *Control, ct *Container, field string, pick func(procfs.Status) uint64) Outcome {
	st, err := procfs.ReadStatus(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	mask := pick(st)
	if bad := e.capsOutside(mask); len(bad) > 0 {
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%s %016x holds %d capabilities beyond the floor's grantable set", field, mask, len(bad)), Details: bad}
	}
	return pass("%s %016x: %s", field, mask, strings.Join(sandbox.CapabilityNames(mask), ","))
}

func probeCapsEffective(e *Env, c *Control, ct *Container) Outcome {
	return capsProbe(e, c, ct, "CapEff", func(s procfs.Status) uint64 { return s.CapEff })
}

func probeCapsBounding(e *Env, c *Control, ct *Container) Outcome {
	return capsProbe(e, c, ct, "CapBnd", func(s procfs.Status) uint64 { return s.CapBnd })
}

func probeNoNewPrivs(e *Env, c *Control, ct *Container) Outcome {
	st, err := procfs.ReadStatus(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	if st.NoNewPrivs != 1 {
		return fail("NoNewPrivs %d", st.NoNewPrivs)
	}
	return pass("NoNewPrivs 1")
}

func probeContainerSeccomp(e *Env, c *Control, ct *Container) Outcome {
	st, err := procfs.ReadStatus(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	if st.Seccomp != 2 || st.SeccompFilters < 1 {
		return fail("Seccomp %d, %d filters", st.Seccomp, st.SeccompFilters)
	}
	return pass("Seccomp 2 (filter), %d filters", st.SeccompFilters)
}

// mountAt returns the topmost mount at point (the last in mountinfo order).
func mountAt(ms []procfs.Mount, point string) (procfs.Mount, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Point == point {
			return ms[i], true
		}
	}
	return procfs.Mount{}, false
}

// covering returns the mount that contains p: the topmost one whose point is p or a parent.
func covering(ms []procfs.Mount, p string) (procfs.Mount, bool) {
	for q := p; ; q = path.Dir(q) {
		if m, ok := mountAt(ms, q); ok {
			return m, true
		}
		if q == "/" {
			return procfs.Mount{}, false
		}
	}
}

func probeRootReadOnly(e *Env, c *Control, ct *Container) Outcome {
	ms, err := procfs.ReadMountinfo(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	m, ok := mountAt(ms, "/")
	if !ok {
		return fail("no root mount")
	}
	if !m.Has("ro") {
		return fail("root %s mounted %s", m.FSType, strings.Join(m.Options, ","))
	}
	return pass("root %s mounted %s", m.FSType, strings.Join(m.Options, ","))
}

// exists reports whether p exists in the container's view (through /proc/PID/root).
func (e *Env) exists(ct *Container, p string) (bool, error) {
	_, err := os.Lstat(filepath.Join(e.Proc, strconv.Itoa(ct.Pid), "root", p))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// probeMaskedPaths: every masked path of the floor is covered by a mount that hides it (the
// null device bound over a file, a read-only mount of an empty directory over a directory: a
// tmpfs of its own, or the runtime's shared empty directory) or is absent.
func probeMaskedPaths(e *Env, c *Control, ct *Container) Outcome {
	ms, err := procfs.ReadMountinfo(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	var bad []string
	n := 0
	for _, p := range e.Floor.MaskedPaths {
		if m, ok := mountAt(ms, p); ok {
			if m.Root == "/null" {
				n++
				continue
			}
			if m.Has("ro") {
				empty, err := e.emptyDir(ct, p)
				if err != nil {
					return e.errOutcome(c, err)
				}
				if empty {
					n++
					continue
				}
			}
			bad = append(bad, fmt.Sprintf("%s: %s mount %s", p, m.FSType, strings.Join(m.Options, ",")))
			continue
		}
		ok, err := e.exists(ct, p)
		if err != nil {
			return e.errOutcome(c, err)
		}
		if ok {
			bad = append(bad, p+": visible, not masked")
		}
	}
	if len(bad) > 0 {
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%d masked paths exposed", len(bad)), Details: bad}
	}
	return pass("%d masked paths masked, %d absent", n, len(e.Floor.MaskedPaths)-n)
}

// emptyDir reports whether p is an empty directory in the container's view.
func (e *Env) emptyDir(ct *Container, p string) (bool, error) {
	ents, err := os.ReadDir(filepath.Join(e.Proc, strconv.Itoa(ct.Pid), "root", p))
	if errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	return err == nil && len(ents) == 0, err
}

func probeReadonlyPaths(e *Env, c *Control, ct *Container) Outcome {
	ms, err := procfs.ReadMountinfo(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	var bad []string
	for _, p := range e.Floor.ReadonlyPaths {
		m, ok := covering(ms, p)
		if ok && m.Has("ro") {
			continue
		}
		exists, err := e.exists(ct, p)
		if err != nil {
			return e.errOutcome(c, err)
		}
		if exists {
			bad = append(bad, p+": writable mount "+m.Point)
		}
	}
	if len(bad) > 0 {
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%d read-only paths writable", len(bad)), Details: bad}
	}
	return pass("%d read-only paths read-only or absent", len(e.Floor.ReadonlyPaths))
}

func probePropagation(e *Env, c *Control, ct *Container) Outcome {
	ms, err := procfs.ReadMountinfo(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	var shared []string
	for _, m := range ms {
		for _, o := range m.Optional {
			if strings.HasPrefix(o, "shared:") {
				shared = append(shared, m.Point)
			}
		}
	}
	if len(shared) > 0 {
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%d mounts propagate to their peers", len(shared)), Details: shared}
	}
	return pass("no shared mount among %d", len(ms))
}

// probeEngineSockets fails a container that has an engine's API socket mounted in.
func probeEngineSockets(e *Env, c *Control, ct *Container) Outcome {
	var p struct {
		Names []string `json:"names"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	ms, err := procfs.ReadMountinfo(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	var found []string
	for _, m := range ms {
		if slices.Contains(p.Names, path.Base(m.Point)) || slices.Contains(p.Names, path.Base(m.Root)) {
			found = append(found, m.Point)
		}
	}
	if len(found) > 0 {
		return Outcome{Status: Fail, Actual: "engine socket mounted", Details: found}
	}
	return pass("no engine socket among %d mounts", len(ms))
}
