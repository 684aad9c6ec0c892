// Package userns makes a container's user namespace, mapped, as a descriptor, without forking
// the runtime (userns.c). The setup child joins it before it creates the container's other
// namespaces (sandbox/internal/nsenter), so those belong to it as with one clone.
package userns

// #cgo CFLAGS: -Wall -Werror -std=gnu11
// #include "userns.h"
import "C"

import (
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// New returns a descriptor of a new user namespace, owned by the caller's euid, that maps ids
// 0..size-1 onto the host's uid..uid+size-1 and gid..gid+size-1. Setgroups stays allowed (a
// privileged writer maps the groups). The caller closes the descriptor. The holder process is
// released before New returns and collected behind it (nothing waits for it to exit).
func New(uid, gid, size uint32) (int, error) {
	var h C.struct_bulwark_userns
	if errno := C.bulwark_userns_start(&h); errno != 0 {
		return -1, fmt.Errorf("create user namespace: %w", syscall.Errno(errno))
	}
	// A holder that could not be collected keeps its stack mapped (bulwark_userns_stop): it
	// may still run on it. There is nothing else to undo.
	defer func() { go C.bulwark_userns_stop(&h) }()
	proc := "/proc/" + strconv.Itoa(int(h.pid)) + "/"
	for _, m := range []struct{ file, line string }{
		{"uid_map", fmt.Sprintf("0 %d %d\n", uid, size)},
		{"gid_map", fmt.Sprintf("0 %d %d\n", gid, size)},
	} {
		if err := os.WriteFile(proc+m.file, []byte(m.line), 0); err != nil {
			return -1, fmt.Errorf("write user namespace %s: %w", m.file, err)
		}
	}
	fd, err := unix.Open(proc+"ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open user namespace: %w", err)
	}
	return fd, nil
}
