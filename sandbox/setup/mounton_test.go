package setup

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFsmountFlags: mount(2)'s flags for a new mount become fsmount attributes and superblock
// flags as mount(2) applies them (MS_RDONLY both: the superblock read-only too), and a flag
// without such an equivalent sends the mount to mount(2).
func TestFsmountFlags(t *testing.T) {
	for _, tc := range []struct {
		flags uintptr
		attrs int
		sb    []string
		ok    bool
	}{
		{0, 0, nil, true},
		{unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC, nil, true},
		{unix.MS_RDONLY | unix.MS_NOSUID, unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID, []string{"ro"}, true},
		{unix.MS_NOSUID | unix.MS_STRICTATIME, unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_STRICTATIME, nil, true},
		{unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC, 0, []string{"sync", "dirsync"}, true},
		{unix.MS_NOSUID | unix.MS_MANDLOCK, 0, nil, false},
		{unix.MS_SILENT, 0, nil, false},
	} {
		attrs, sb, ok := fsmountFlags(tc.flags)
		if ok != tc.ok || ok && (attrs != tc.attrs || !slices.Equal(sb, tc.sb)) {
			t.Errorf("fsmountFlags(%#x) = %#x, %q, %v; want %#x, %q, %v", tc.flags, attrs, sb, ok, tc.attrs, tc.sb, tc.ok)
		}
	}
}
