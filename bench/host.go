package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/bench/internal/procfs"
)

// readTrim reads a small kernel file.
func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}

func probeUserNamespaces(e *Env, c *Control) Outcome {
	v, err := readTrim(filepath.Join(e.Proc, "sys/user/max_user_namespaces"))
	if err != nil {
		return e.errOutcome(c, err)
	}
	if n, err := strconv.Atoi(v); err != nil || n <= 0 {
		return fail("max_user_namespaces %s", v)
	}
	return pass("max_user_namespaces %s", v)
}

func probeSeccomp(e *Env, c *Control) Outcome {
	v, err := readTrim(filepath.Join(e.Proc, "sys/kernel/seccomp/actions_avail"))
	if err != nil {
		return e.errOutcome(c, err)
	}
	have := strings.Fields(v)
	var missing []string
	for _, a := range []string{"kill_process", "errno", "user_notif"} {
		if !slices.Contains(have, a) {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		return fail("seccomp actions missing: %s", strings.Join(missing, ", "))
	}
	return pass("seccomp filter mode, actions: %s", v)
}

// landlockABI asks the kernel for its Landlock ABI (landlock_create_ruleset with
// LANDLOCK_CREATE_RULESET_VERSION creates nothing).
func landlockABI() int {
	const createRulesetVersion = 1
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, createRulesetVersion)
	if errno != 0 {
		return 0
	}
	return int(v)
}

func probeLandlock(e *Env, c *Control) Outcome {
	var p struct {
		MinABI int `json:"minABI"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	abi := e.LandlockABI()
	if abi < p.MinABI {
		return fail("Landlock ABI %d", abi)
	}
	return pass("Landlock ABI %d", abi)
}

// macState describes the host's MAC layers.
func (e *Env) macState() (selinux, apparmor bool, desc string) {
	enforce, err := readTrim(filepath.Join(e.Sys, "fs/selinux/enforce"))
	selinux = err == nil && enforce == "1"
	aa, err := readTrim(filepath.Join(e.Sys, "module/apparmor/parameters/enabled"))
	apparmor = err == nil && aa == "Y"
	state := func(on bool, present error) string {
		switch {
		case on:
			return "enforcing"
		case present == nil:
			return "present, not enforcing"
		}
		return "absent"
	}
	_, seErr := os.Stat(filepath.Join(e.Sys, "fs/selinux"))
	_, aaErr := os.Stat(filepath.Join(e.Sys, "module/apparmor"))
	desc = fmt.Sprintf("SELinux %s, AppArmor %s, Landlock ABI %d", state(selinux, seErr), state(apparmor, aaErr), e.LandlockABI())
	return selinux, apparmor, desc
}

func probeMAC(e *Env, _ *Control) Outcome {
	se, aa, desc := e.macState()
	if !se && !aa && e.LandlockABI() == 0 {
		return fail("%s", desc)
	}
	return pass("%s", desc)
}

func probeCgroup(e *Env, c *Control) Outcome {
	mounts, err := procfs.ReadMountinfo(e.Proc, 0)
	if err != nil {
		return e.errOutcome(c, err)
	}
	have := map[string]bool{}
	v1, v2 := false, ""
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup":
			v1 = true
			for _, o := range m.Super {
				have[o] = true
			}
		case "cgroup2":
			if v2 == "" {
				v2 = m.Point
			}
		}
	}
	if v2 != "" {
		ctl, _ := readTrim(filepath.Join(strings.Replace(v2, "/sys", e.Sys, 1), "cgroup.controllers"))
		for f := range strings.FieldsSeq(ctl) {
			have[f] = true
		}
	}
	version := "v1"
	switch {
	case v1 && v2 != "":
		version = "hybrid (v1, v2 at " + v2 + ")"
	case v2 != "":
		version = "v2"
	case !v1:
		return fail("no cgroup filesystem mounted")
	}
	var missing []string
	for _, ctl := range []string{"memory", "pids"} {
		if !have[ctl] {
			missing = append(missing, ctl)
		}
	}
	if len(missing) > 0 {
		return fail("cgroup %s without %s", version, strings.Join(missing, ", "))
	}
	return pass("cgroup %s, memory and pids controllers", version)
}

func probeStateRootFS(e *Env, c *Control) Outcome {
	var root, slash unix.Stat_t
	if err := unix.Stat(e.Root, &root); err != nil {
		return e.errOutcome(c, err)
	}
	if err := unix.Stat("/", &slash); err != nil {
		return e.errOutcome(c, err)
	}
	if root.Dev == slash.Dev {
		return fail("%s is on the root filesystem", e.Root)
	}
	return pass("%s is on its own filesystem (device %d:%d)", e.Root, unix.Major(root.Dev), unix.Minor(root.Dev))
}

// probeAuditRules looks for a kernel audit watch on each path (auditd's rules files: -w PATH
// or -F dir=PATH / path=PATH). {root} and {exe} stand for the state root and the binary.
func probeAuditRules(e *Env, c *Control) Outcome {
	var p struct {
		Paths []string `json:"paths"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	files, _ := filepath.Glob(filepath.Join(e.Etc, "audit/rules.d/*.rules"))
	files = append(files, filepath.Join(e.Etc, "audit/audit.rules"))
	var rules []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return e.errOutcome(c, err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				rules = append(rules, line)
			}
		}
	}
	var missing []string
	for _, path := range p.Paths {
		path = e.expand(path)
		if path == "" {
			continue
		}
		watched := slices.ContainsFunc(rules, func(r string) bool {
			f := strings.Fields(r)
			for i, x := range f {
				if x == "-w" && i+1 < len(f) && f[i+1] == path || x == "dir="+path || x == "path="+path {
					return true
				}
			}
			return false
		})
		if !watched {
			missing = append(missing, path)
		}
	}
	if len(missing) > 0 {
		return Outcome{Status: Fail, Actual: "no audit watch on " + strings.Join(missing, ", "), Details: []string{fmt.Sprintf("%d rule lines read from %s/audit", len(rules), e.Etc)}}
	}
	return pass("audit watches on %d paths", len(p.Paths))
}

// expand replaces {root} and {exe} in a path of the catalog.
func (e *Env) expand(p string) string {
	if strings.Contains(p, "{exe}") && e.Executable == "" {
		return ""
	}
	return strings.NewReplacer("{root}", e.Root, "{exe}", e.Executable).Replace(p)
}
