// Package mac detects and drives the host's mandatory access control layers for a container:
// SELinux (unique MCS labels), AppArmor (a per-container profile) and the Landlock ABI; the
// Landlock ruleset itself lives in sandbox/internal/landlock.
package mac

import (
	"bytes"
	"errors"

	"github.com/opencontainers/selinux/go-selinux"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/landlock"
	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
)

// The state the MAC layers keep for one container, and its application in the setup child, live
// in macexec: the setup child links that package without this one.
type (
	Layers        = macexec.Layers
	Container     = macexec.Container
	SELinuxLabels = macexec.SELinuxLabels
)

// ErrNotEnabled is returned when asked to apply a layer the host does not enable.
var ErrNotEnabled = macexec.ErrNotEnabled

// Detect probes the host.
func Detect() Layers {
	return Layers{
		SELinux:     selinuxEnabled(),
		AppArmor:    macexec.AppArmorEnabled(),
		LandlockABI: landlock.ABI(),
	}
}

// selinuxEnabled is selinux.GetEnabled. That looks for selinuxfs first at /sys/fs/selinux, then in
// /proc/filesystems, and only then in the mount table: a kernel that does not know selinuxfs has
// SELinux disabled. noSELinuxfs answers that case with plain system calls (two statfs, or an open
// and reads of /proc/filesystems); go-selinux reads /proc/filesystems through an *os.File and the
// runtime's poller (≈ 10 system calls, ≈ 40 µs of every bulwark-runc start's policy step, whose
// floor detects the host's layers). Any other host, and any doubt, is go-selinux's to answer.
func selinuxEnabled() bool {
	if noSELinuxfs() {
		return false
	}
	return selinux.GetEnabled()
}

// noSELinuxfs reports whether nothing is mounted at /sys/fs/selinux that go-selinux would take
// for selinuxfs and the kernel has not registered selinuxfs (sysfs or /proc/filesystems says
// so); false when unsure.
func noSELinuxfs() bool {
	var st unix.Statfs_t
	err := unix.Statfs("/sys/fs/selinux", &st)
	if err == nil && uint32(st.Type) == uint32(unix.SELINUX_MAGIC) {
		return false
	}
	if errors.Is(err, unix.ENOENT) && sysfsAt("/sys/fs") {
		return true
	}
	fd, err := unix.Open("/proc/filesystems", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	buf, n := make([]byte, 4096), 0
	for {
		if n == len(buf) {
			if len(buf) >= maxFilesystems {
				return false
			}
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false
		}
		if m == 0 {
			return !listsSELinuxfs(buf[:n])
		}
		n += m
	}
}

// sysfsAt reports whether dir is a directory of a sysfs. Where /sys/fs is one and has no selinux
// directory, the kernel has not registered selinuxfs: since Linux 3.0 it creates that mount point
// (sysfs_create_mount_point) before it registers the filesystem, only when SELinux is enabled at
// boot, and removes it only with the registration (every sysfs shows the same fs directory). That
// is what /proc/filesystems says, without opening and reading a generated file (≈ 15 µs of every
// bulwark-runc start on a host without SELinux).
func sysfsAt(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && uint32(st.Type) == uint32(unix.SYSFS_MAGIC)
}

// maxFilesystems bounds the read of /proc/filesystems (a few hundred bytes); a longer one is left
// to go-selinux.
const maxFilesystems = 64 << 10

// listsSELinuxfs reports whether data, /proc/filesystems, lists selinuxfs as go-selinux looks
// for it.
func listsSELinuxfs(data []byte) bool { return bytes.Contains(data, []byte("\tselinuxfs\n")) }
