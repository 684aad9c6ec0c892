package cgroups

import (
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The floor's limits for a spec that sets none. 512 MiB and 1024 tasks run ordinary services and
// builds, while a fork bomb or a leaking process stops at its own cgroup instead of the host.
const (
	DefaultMemoryLimit int64 = 512 << 20
	DefaultPidsLimit   int64 = 1024
)

// Change records one field WithDefaults set or raised.
type Change struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// WithDefaults returns a copy of r with the floor's limits filled in, and each change it made:
// a memory limit, swap no larger than the memory limit (swap would otherwise let a container
// exceed its memory limit), a pids limit, and the device allowlist (deny all but the minimal set).
// r is not modified.
func WithDefaults(r *specs.LinuxResources) (*specs.LinuxResources, []Change) {
	out := &specs.LinuxResources{}
	if r != nil {
		*out = *r
	}
	var changes []Change

	mem := &specs.LinuxMemory{}
	if out.Memory != nil {
		*mem = *out.Memory
	}
	out.Memory = mem
	if mem.Limit == nil || *mem.Limit <= 0 {
		changes = append(changes, Change{"linux.resources.memory.limit", optInt(mem.Limit), itoa(DefaultMemoryLimit)})
		mem.Limit = ptr(DefaultMemoryLimit)
	}
	if mem.Swap == nil || *mem.Swap < 0 {
		// Unset or unlimited (-1): memory+swap equals the memory limit, i.e. no swap.
		changes = append(changes, Change{"linux.resources.memory.swap", optInt(mem.Swap), itoa(*mem.Limit)})
		mem.Swap = ptr(*mem.Limit)
	}

	pids := &specs.LinuxPids{}
	if out.Pids != nil {
		*pids = *out.Pids
	}
	out.Pids = pids
	if pids.Limit == nil || *pids.Limit <= 0 {
		changes = append(changes, Change{"linux.resources.pids.limit", optInt(pids.Limit), itoa(DefaultPidsLimit)})
		pids.Limit = ptr(DefaultPidsLimit)
	}

	devs := floorDeviceSpec()
	var dropped []string
	for _, d := range out.Devices {
		if !d.Allow {
			devs = append(devs, d) // deny rules only narrow the floor; Create applies them
			continue
		}
		if !coveredByFloor(d) {
			dropped = append(dropped, describeDevice(d))
		}
	}
	if len(dropped) > 0 {
		changes = append(changes, Change{"linux.resources.devices", "allow " + strings.Join(dropped, ", "),
			"deny all but the minimal /dev set"})
	}
	out.Devices = devs
	return out, changes
}

func describeDevice(d specs.LinuxDeviceCgroup) string {
	typ, maj, min, acc, err := parseSpecDevice(d)
	if err != nil {
		return "invalid rule"
	}
	return devRule{typ, maj, min, acc}.String()
}

func ptr[T any](v T) *T { return &v }

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func optInt(p *int64) string {
	if p == nil {
		return "unset"
	}
	return itoa(*p)
}
