package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"bulwark.dev/bulwark/sandbox/setup"
	"golang.org/x/sys/unix"
)

// HelperName is the setup helper's file name: the runtime looks for it beside its own binary.
const HelperName = setup.HelperName

// buildID is setup's build stamp, which `make build` sets; a variable so tests can pretend a
// stamped build.
var buildID = setup.BuildID()

// helperEnv is the environment a setup child starts with: its mode, the runtime's build and
// GOMAXPROCS=2. The child does its work on its locked main thread, but one step runs beside it:
// detaching the host's mount tree after pivot_root waits for an RCU grace period (see
// setup.pivot), and with a second P the goroutine that waits starts at once instead of when the
// main thread next blocks. More Ps would only start more threads and spread more heap spans over
// per-P caches before the workload's execve has to kill every other thread and free the
// anonymous memory. The workload gets the environment of its own spec, not this one.
func helperEnv(mode string) []string {
	return []string{setup.EnvSetup + "=" + mode, setup.EnvBuild + "=" + buildID, "GOMAXPROCS=2"}
}

// setupHelper opens (O_PATH) the binary setup children are executed from: bulwark-init beside
// the runtime's own binary when this build is stamped and the file is there, else the runtime
// binary itself. A helper that is there but is not a regular executable file owned by the
// runtime binary's owner and writable by no one else is refused: whoever could replace it would
// run code as the runtime, in every container's setup.
func setupHelper() (int, error) {
	self, err := unix.Open("/proc/self/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open own binary: %w", err)
	}
	exe, err := os.Readlink("/proc/self/exe")
	if buildID == "" || err != nil || !filepath.IsAbs(exe) {
		return self, nil
	}
	path := filepath.Join(filepath.Dir(exe), HelperName)
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return self, nil
	}
	defer unix.Close(self)
	if err != nil {
		return -1, fmt.Errorf("open setup helper %s: %w", path, err)
	}
	var own, st unix.Stat_t
	if err := unix.Fstat(self, &own); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat own binary: %w", err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat setup helper %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != own.Uid || st.Mode&0o022 != 0 || st.Mode&0o100 == 0 {
		unix.Close(fd)
		return -1, floorErr("setup helper %s is not a regular executable file of the runtime binary's owner that no one else may write", path)
	}
	return fd, nil
}
