package macexec

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/cyphar/filepath-securejoin/pathrs-lite/procfs"
	"github.com/opencontainers/selinux/go-selinux"
	"golang.org/x/sys/unix"
)

// AppArmorEnabled follows the kernel's own switches: the module parameter says AppArmor is on,
// and securityfs exposes its interface (needed to load profiles).
func AppArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	if err != nil || !strings.HasPrefix(string(b), "Y") {
		return false
	}
	_, err = os.Stat("/sys/kernel/security/apparmor")
	return err == nil
}

// SELinuxExecAttr is the file and the bytes ApplySELinuxExec writes: the kernel switches the
// calling thread to the label at its next execve.
func SELinuxExecAttr(processLabel string) (path string, data []byte) {
	return "/proc/thread-self/attr/exec", []byte(processLabel)
}

// ApplySELinuxExec makes the calling thread's next execve run under processLabel. It locks the
// goroutine to its thread for good: the label is per thread, so the thread that set it must be the
// one that calls execve. /proc is opened through a verified procfs handle (pathrs-lite), so a fake
// /proc mounted by an image cannot swallow the write (CVE-2019-16884, CVE-2019-19921).
func ApplySELinuxExec(processLabel string) error {
	if !selinux.GetEnabled() {
		return fmt.Errorf("selinux exec label %q: %w", processLabel, ErrNotEnabled)
	}
	runtime.LockOSThread() // never unlocked, see above
	if err := selinux.SetExecLabel(processLabel); err != nil {
		return fmt.Errorf("set selinux exec label %q: %w", processLabel, err)
	}
	return nil
}

// AppArmorExecAttr is the /proc/thread-self file and the bytes ApplyAppArmorExec writes: the kernel
// attaches the profile at the calling thread's next execve. Kernels with LSM stacking (5.8+)
// expose AppArmor's own attr/apparmor/exec; older ones only the shared attr/exec.
func AppArmorExecAttr(name string) (path string, data []byte) {
	sub := "attr/exec"
	if _, err := os.Stat("/proc/thread-self/attr/apparmor"); err == nil {
		sub = "attr/apparmor/exec"
	}
	return "/proc/thread-self/" + sub, []byte("exec " + name)
}

// ApplyAppArmorExec makes the calling thread's next execve run confined by profile name. It locks
// the goroutine to its thread for good (the attribute is per thread). /proc is reached through a
// verified procfs handle, so an image that mounts a fake /proc over the container's cannot make the
// write land in an ordinary file and the workload run unconfined (CVE-2019-16884).
func ApplyAppArmorExec(name string) error {
	if !AppArmorEnabled() {
		return fmt.Errorf("apparmor exec %s: %w", name, ErrNotEnabled)
	}
	runtime.LockOSThread() // never unlocked, see above
	path, data := AppArmorExecAttr(name)
	proc, err := procfs.OpenProcRoot()
	if err != nil {
		return fmt.Errorf("open /proc: %w", err)
	}
	defer proc.Close()
	h, closer, err := proc.OpenThreadSelf(strings.TrimPrefix(path, "/proc/thread-self/"))
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer closer()
	defer h.Close()
	f, err := pathrs.Reopen(h, unix.O_WRONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", path, err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %q to %s: %w", data, path, err)
	}
	return nil
}
