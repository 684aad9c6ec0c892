package cgroups

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// The controllers the v2 path needs before it is preferred over v1.
var v2Needed = []string{"memory", "pids", "cpu", "io", "cpuset"}

// The v1 hierarchies the v1 path needs. Devices and freezer are part of the floor (device
// allowlist, pause); the rest carry the limits WithDefaults always sets or the spec may ask for.
var v1Needed = []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer"}

// hierarchies is what detect found: either v2 (the unified mount point) or v1 (controller -> mount
// point). With v1, named hierarchies ("name=systemd" -> mount point) and a hybrid host's unified
// hierarchy carry no limits, but a container is placed in them too (see v1Manager).
type hierarchies struct {
	v2      string
	v1      map[string]string
	named   map[string]string
	unified string
}

func detect() (hierarchies, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return hierarchies{}, err
	}
	return choose(mounts, readAll)
}

func cgroupMounts() ([]*mountinfo.Info, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return mounts, nil
}

// choose decides between v2 and v1 from the cgroup mounts. It reads cgroup.controllers through
// readFile so the decision can be unit-tested on a made-up mount table.
func choose(mounts []*mountinfo.Info, readFile func(string) ([]byte, error)) (hierarchies, error) {
	var v2 string
	v1, named := map[string]string{}, map[string]string{}
	for _, m := range mounts {
		switch m.FSType {
		case "cgroup2":
			// Prefer the conventional pure-v2 location when several cgroup2 mounts exist.
			if v2 == "" || m.Mountpoint == "/sys/fs/cgroup" {
				v2 = m.Mountpoint
			}
		case "cgroup":
			for _, opt := range strings.Split(m.VFSOptions, ",") {
				if strings.HasPrefix(opt, "name=") && !hasController(m.VFSOptions) {
					if _, seen := named[opt]; !seen {
						named[opt] = m.Mountpoint
					}
				}
				if opt == "rw" || opt == "ro" || strings.Contains(opt, "=") {
					continue // name=systemd and mount flags are not controllers
				}
				if _, seen := v1[opt]; !seen {
					v1[opt] = m.Mountpoint
				}
			}
		}
	}
	var v2Ctrls map[string]bool
	if v2 != "" {
		data, err := readFile(filepath.Join(v2, "cgroup.controllers"))
		if err != nil {
			return hierarchies{}, fmt.Errorf("read %s controllers: %w", v2, err)
		}
		v2Ctrls = map[string]bool{}
		for _, c := range strings.Fields(string(data)) {
			v2Ctrls[c] = true
		}
		if missing(v2Ctrls, v2Needed) == nil {
			return hierarchies{v2: v2}, nil
		}
	}
	v1Have := map[string]bool{}
	for c := range v1 {
		v1Have[c] = true
	}
	miss1 := missing(v1Have, v1Needed)
	if miss1 == nil {
		return hierarchies{v1: v1, named: named, unified: v2}, nil
	}
	// A pure v2 host missing an optional controller (io, cpuset, cpu) still gets v2: limits that need
	// the missing controller then fail when requested, while memory and pids (always set) must exist.
	if v2 != "" && len(v1) == 0 && missing(v2Ctrls, []string{"memory", "pids"}) == nil {
		return hierarchies{v2: v2}, nil
	}
	return hierarchies{}, fmt.Errorf("%w: no usable cgroup setup (v2 at %q lacks %v; v1 lacks %v)",
		ErrUnsupported, v2, missing(v2Ctrls, v2Needed), miss1)
}

func missing(have map[string]bool, want []string) []string {
	var out []string
	for _, w := range want {
		if !have[w] {
			out = append(out, w)
		}
	}
	sort.Strings(out)
	return out
}

// hasController reports whether a v1 mount's options name a controller (not only a name= and
// mount flags).
func hasController(opts string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o != "rw" && o != "ro" && !strings.Contains(o, "=") && o != "none" {
			return true
		}
	}
	return false
}
