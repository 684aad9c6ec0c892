package sandbox

import "bulwark.dev/bulwark/sandbox/internal/caps"

// KnownCapability reports whether name (CAP_X or X, in any case) names a capability the floor
// knows, so a caller can refuse a misspelt one before asking for anything.
func KnownCapability(name string) bool {
	_, err := caps.Parse([]string{name})
	return err == nil
}

// CapabilityNames names the capabilities set in a kernel capability mask, as /proc/PID/status
// shows it (CapEff, CapBnd), so a scanner compares a running process with Expected's names.
func CapabilityNames(mask uint64) []string { return caps.Set(mask).Names() }

// FloorDrops reports whether the floor drops capability name when it is asked for (neither kept
// nor refused: NET_RAW, SYS_CHROOT, …), so a caller that asked for it by name can refuse the
// request instead of running without it.
func FloorDrops(name string) bool {
	s, err := caps.Parse([]string{name})
	if err != nil {
		return false
	}
	_, _, dropped := caps.Classify(s)
	return dropped != 0
}
