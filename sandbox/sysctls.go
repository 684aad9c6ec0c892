package sandbox

import (
	"fmt"
	"strconv"
	"strings"

	"bulwark.dev/bulwark/sandbox/internal/idmap"
)

// The floor's sysctl step: only sysctls of the container's own namespaces may be set.

// namespacedSysctls may be set because they belong to the container's own ipc or net namespace.
var namespacedSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
	"kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "fs.mqueue.", "net.",
}

func (f *floor) sysctls() error {
	for k := range f.spec.Linux.Sysctl {
		ok := false
		for _, p := range namespacedSysctls {
			if k == p || (strings.HasSuffix(p, ".") && strings.HasPrefix(k, p)) {
				ok = true
			}
		}
		if !ok || strings.Contains(k, "/") || strings.Contains(k, "..") {
			f.refuse(RefusedSysctl, k, f.spec.Linux.Sysctl[k], fmt.Sprintf("sysctl %q is not namespaced to the container", k))
			delete(f.spec.Linux.Sysctl, k)
		}
	}
	if v, ok := f.spec.Linux.Sysctl[pingGroupRange]; ok {
		c, err := clampPingGroupRange(v, idmap.RangeSize)
		if err != nil {
			return err
		}
		if c != v {
			f.raise("linux.sysctl["+pingGroupRange+"]", v, c)
			f.spec.Linux.Sysctl[pingGroupRange] = c
		}
	}
	return nil
}

// pingGroupRange names gids allowed ICMP echo sockets. Docker sets it to "0 2147483647", which
// the kernel refuses (EINVAL) in a user namespace where those gids are not all mapped.
const pingGroupRange = "net.ipv4.ping_group_range"

// clampPingGroupRange limits "low high" to the container's mapped gids 0..size-1. An empty range
// (low > high, the kernel's way of saying "nobody") stays as asked, and one wholly outside the
// mapping becomes the kernel's default "1 0".
func clampPingGroupRange(v string, size uint32) (string, error) {
	fs := strings.Fields(v)
	if len(fs) != 2 {
		return "", floorErr("sysctl %s=%q: want two gids", pingGroupRange, v)
	}
	lo, err1 := strconv.ParseUint(fs[0], 10, 32)
	hi, err2 := strconv.ParseUint(fs[1], 10, 32)
	if err1 != nil || err2 != nil {
		return "", floorErr("sysctl %s=%q: want two gids", pingGroupRange, v)
	}
	if lo > hi {
		return v, nil
	}
	last := uint64(size) - 1
	if lo > last {
		return "1 0", nil
	}
	hi = min(hi, last)
	if c := fmt.Sprintf("%d %d", lo, hi); c != strings.Join(fs, " ") {
		return c, nil
	}
	return v, nil
}
