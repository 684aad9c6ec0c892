package bench

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"bulwark.dev/bulwark/bench/internal/procfs"
)

// unlimitedV1 is where cgroup v1 counts a limit as none (the page counter's maximum, rounded).
const unlimitedV1 = 1 << 62

// hostPath maps a path of the host's mount table to the scan's trees (Sys may be a fixture).
func (e *Env) hostPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/sys/"); ok {
		return filepath.Join(e.Sys, rest)
	}
	return p
}

// cgroupFile finds the file of controller ctl (v1 name) or v2file for the container's cgroup,
// through the host's cgroup mounts and the process's /proc/PID/cgroup.
func (e *Env) cgroupFile(ct *Container, ctl, v1file, v2file string) (string, string, error) {
	cgs, err := procfs.ReadCgroups(e.Proc, ct.Pid)
	if err != nil {
		return "", "", err
	}
	mounts, err := procfs.ReadMountinfo(e.Proc, 0)
	if err != nil {
		return "", "", err
	}
	for _, cg := range cgs {
		if !slices.Contains(cg.Controllers, ctl) {
			continue
		}
		for _, m := range mounts {
			if m.FSType == "cgroup" && slices.Contains(m.Super, ctl) {
				return filepath.Join(e.hostPath(m.Point), cg.Path, v1file), "v1", nil
			}
		}
	}
	for _, cg := range cgs {
		if len(cg.Controllers) != 0 {
			continue
		}
		for _, m := range mounts {
			if m.FSType == "cgroup2" {
				return filepath.Join(e.hostPath(m.Point), cg.Path, v2file), "v2", nil
			}
		}
	}
	return "", "", fmt.Errorf("no %s cgroup for pid %d", ctl, ct.Pid)
}

func limitProbe(e *Env, c *Control, ct *Container, ctl, v1file, v2file string) Outcome {
	f, ver, err := e.cgroupFile(ct, ctl, v1file, v2file)
	if err != nil {
		return e.errOutcome(c, err)
	}
	v, err := readTrim(f)
	if err != nil {
		return e.errOutcome(c, err)
	}
	if v == "max" {
		return fail("%s %s: max (no limit)", ver, filepath.Base(f))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fail("%s %s: %q", ver, filepath.Base(f), v)
	}
	if n >= unlimitedV1 {
		return fail("%s %s: %d (no limit)", ver, filepath.Base(f), n)
	}
	return pass("%s %s: %d", ver, filepath.Base(f), n)
}

func probeMemoryLimit(e *Env, c *Control, ct *Container) Outcome {
	return limitProbe(e, c, ct, "memory", "memory.limit_in_bytes", "memory.max")
}

func probePidsLimit(e *Env, c *Control, ct *Container) Outcome {
	return limitProbe(e, c, ct, "pids", "pids.max", "pids.max")
}

// probeRlimits compares /proc/PID/limits with the floor's ceilings (Expected.RlimitsMax).
func probeRlimits(e *Env, c *Control, ct *Container) Outcome {
	lim, err := procfs.ReadLimits(e.Proc, ct.Pid)
	if err != nil {
		return e.errOutcome(c, err)
	}
	var bad, ok []string
	names := make([]string, 0, len(e.Floor.RlimitsMax))
	for n := range e.Floor.RlimitsMax {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		max := e.Floor.RlimitsMax[n]
		l, found := lim[n]
		switch {
		case !found:
			bad = append(bad, n+": not in /proc limits")
		case l.Hard < 0 || uint64(l.Hard) > max:
			bad = append(bad, fmt.Sprintf("%s hard %s > %d", n, limitString(l.Hard), max))
		default:
			ok = append(ok, fmt.Sprintf("%s %d", n, l.Hard))
		}
	}
	if len(bad) > 0 {
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%d limits above the floor's ceiling", len(bad)), Details: bad}
	}
	return pass("%s", strings.Join(ok, ", "))
}

func limitString(v int64) string {
	if v < 0 {
		return "unlimited"
	}
	return strconv.FormatInt(v, 10)
}

// probeContainerMAC reads the container's SELinux or AppArmor context where the host enforces
// one. Landlock leaves no trace in /proc: a Landlock-only host is reported, not scored.
func probeContainerMAC(e *Env, c *Control, ct *Container) Outcome {
	se, aa, desc := e.macState()
	dir := filepath.Join(e.Proc, strconv.Itoa(ct.Pid), "attr")
	switch {
	case aa:
		v, err := readTrim(filepath.Join(dir, "apparmor/current"))
		if err != nil {
			return e.errOutcome(c, err)
		}
		if v == "" || strings.HasPrefix(v, "unconfined") {
			return fail("AppArmor %q", v)
		}
		return pass("AppArmor %s", v)
	case se:
		v, err := readTrim(filepath.Join(dir, "current"))
		if err != nil {
			return e.errOutcome(c, err)
		}
		if v == "" || strings.Contains(v, "unconfined_t") || strings.Contains(v, "spc_t") {
			return fail("SELinux %q", v)
		}
		return pass("SELinux %s", strings.TrimRight(v, "\x00"))
	}
	return info("%s: the kernel shows no per-process Landlock domain in /proc; see the runtime's record", desc)
}
