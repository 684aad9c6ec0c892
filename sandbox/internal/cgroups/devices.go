package cgroups

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// wildcard stands for "*" in a device rule's major or minor.
const wildcard = -1

// devRule is one allowed device class: type 'c' or 'b', major/minor (wildcard = any), access "rwm" subset.
type devRule struct {
	typ          byte
	major, minor int64
	access       string
}

// floorDevices is the only device access a container ever gets: the minimal /dev the runtime
// builds. No "m" (mknod): devices are bind-mounted or created by the runtime, never by the
// workload. /dev/console is a devpts slave (136:*), so it needs no entry of its own.
var floorDevices = []devRule{
	{'c', 1, 3, "rw"},          // /dev/null
	{'c', 1, 5, "rw"},          // /dev/zero
	{'c', 1, 7, "rw"},          // /dev/full
	{'c', 1, 8, "rw"},          // /dev/random
	{'c', 1, 9, "rw"},          // /dev/urandom
	{'c', 5, 0, "rw"},          // /dev/tty
	{'c', 5, 2, "rw"},          // /dev/ptmx (also the private devpts' pts/ptmx)
	{'c', 136, wildcard, "rw"}, // /dev/pts/*
}

// String renders the rule as devices.allow expects it ("c 1:3 rw").
func (r devRule) String() string {
	num := func(n int64) string {
		if n == wildcard {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.typ, num(r.major), num(r.minor), r.access)
}

// effectiveDevices applies the spec's deny rules to the floor set; spec allow rules are never
// honoured (WithDefaults reports them as dropped). A universal deny ("a *:* rwm", which runc and
// Docker put first) is the floor's own baseline and leaves the runtime's minimal /dev usable.
// Denying part of a floor wildcard entry (one pty of 136:*) cannot be expressed as a subtraction
// and is refused rather than ignored.
func effectiveDevices(spec []specs.LinuxDeviceCgroup) ([]devRule, error) {
	rules := append([]devRule(nil), floorDevices...)
	for _, d := range spec {
		if d.Allow {
			continue
		}
		typ, maj, min, acc, err := parseSpecDevice(d)
		if err != nil {
			return nil, err
		}
		if typ == 'a' && maj == wildcard && min == wildcard {
			continue
		}
		var kept []devRule
		for _, r := range rules {
			if typ != 'a' && typ != r.typ || !overlaps(maj, r.major) || !overlaps(min, r.minor) {
				kept = append(kept, r)
				continue
			}
			if r.major == wildcard && maj != wildcard || r.minor == wildcard && min != wildcard {
				return nil, fmt.Errorf("%w: device deny rule %c %d:%d is narrower than floor entry %s",
					ErrUnsupported, typ, maj, min, r)
			}
			r.access = strings.Map(func(c rune) rune {
				if strings.ContainsRune(acc, c) {
					return -1
				}
				return c
			}, r.access)
			if r.access != "" {
				kept = append(kept, r)
			}
		}
		rules = kept
	}
	return rules, nil
}

func overlaps(a, b int64) bool { return a == wildcard || b == wildcard || a == b }

func parseSpecDevice(d specs.LinuxDeviceCgroup) (typ byte, maj, min int64, access string, err error) {
	switch d.Type {
	case "", "a":
		typ = 'a'
	case "c", "b":
		typ = d.Type[0]
	default:
		return 0, 0, 0, "", fmt.Errorf("device rule type %q: want a, b or c", d.Type)
	}
	maj, min = wildcard, wildcard
	if d.Major != nil && *d.Major >= 0 {
		maj = *d.Major
	}
	if d.Minor != nil && *d.Minor >= 0 {
		min = *d.Minor
	}
	access = d.Access
	if access == "" {
		access = "rwm"
	}
	if strings.Trim(access, "rwm") != "" {
		return 0, 0, 0, "", fmt.Errorf("device rule access %q: want a subset of rwm", d.Access)
	}
	return typ, maj, min, access, nil
}

// coveredByFloor reports whether an allow rule from a spec grants nothing beyond the floor set.
func coveredByFloor(d specs.LinuxDeviceCgroup) bool {
	typ, maj, min, acc, err := parseSpecDevice(d)
	if err != nil || typ == 'a' || maj == wildcard {
		return false
	}
	for _, r := range floorDevices {
		if r.typ == typ && r.major == maj && (r.minor == wildcard || min != wildcard && r.minor == min) &&
			strings.Trim(acc, r.access) == "" {
			return true
		}
	}
	return false
}

// floorDeviceSpec renders the floor set as spec entries: deny everything, then the allowlist.
// Every entry's numbers live in one array, allocated with the list (each of its own was two
// allocations per entry on the policy step of every create).
func floorDeviceSpec() []specs.LinuxDeviceCgroup {
	out := make([]specs.LinuxDeviceCgroup, 1, 1+len(floorDevices))
	out[0] = specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}
	nums := make([]int64, 2*len(floorDevices))
	for i, r := range floorDevices {
		maj, min := &nums[2*i], &nums[2*i+1]
		*maj, *min = r.major, r.minor
		d := specs.LinuxDeviceCgroup{Allow: true, Type: string(r.typ), Major: maj, Access: r.access}
		if r.minor != wildcard {
			d.Minor = min
		}
		out = append(out, d)
	}
	return out
}
