// Package userns makes a container's user namespace, and the namespaces it owns that are made
// apart from the setup child, as descriptors, without forking the runtime (userns.c). The setup
// child joins them before it creates the container's other namespaces (sandbox/internal/nsenter),
// so every one of them belongs to the user namespace as with one clone.
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

// Holder is a new user namespace, unmapped until Map, and the namespaces made in it, held by a
// process that only waits (userns.c) until Map or Release.
type Holder struct {
	h        C.struct_bulwark_userns
	released bool
}

// Start makes a user namespace owned by the caller's euid and, in it and owned by it, a new
// namespace of each type in flags (CLONE_NEWNET, CLONE_NEWIPC, CLONE_NEWUTS: types a process
// joins with setns from a multithreaded runtime). The kernel makes them in one clone, which
// waits on the slow ones (a network namespace: ~0.7 ms here): a caller starts it beside other
// work. Nothing runs in them until the caller lets a process join them.
func Start(flags int) (*Holder, error) {
	if flags&^(unix.CLONE_NEWNET|unix.CLONE_NEWIPC|unix.CLONE_NEWUTS) != 0 {
		return nil, fmt.Errorf("create user namespace: flags %#x: only network, ipc and uts namespaces are made apart", flags)
	}
	h := &Holder{}
	if errno := C.bulwark_userns_start(&h.h, C.int(flags)); errno != 0 {
		return nil, fmt.Errorf("create user namespace: %w", syscall.Errno(errno))
	}
	return h, nil
}

// Map maps ids 0..size-1 of the user namespace onto the host's uid..uid+size-1 and
// gid..gid+size-1. Setgroups stays allowed (a privileged writer maps the groups).
func (h *Holder) Map(uid, gid, size uint32) error {
	if h.released {
		return fmt.Errorf("map user namespace: released")
	}
	proc := "/proc/" + strconv.Itoa(int(h.h.pid)) + "/"
	for _, m := range []struct{ file, line string }{
		{"uid_map", fmt.Sprintf("0 %d %d\n", uid, size)},
		{"gid_map", fmt.Sprintf("0 %d %d\n", gid, size)},
	} {
		if err := os.WriteFile(proc+m.file, []byte(m.line), 0); err != nil {
			return fmt.Errorf("write user namespace %s: %w", m.file, err)
		}
	}
	return nil
}

// Open returns a descriptor (O_CLOEXEC) of the holder's namespace of type name as /proc names
// it ("user", "net", "ipc", "uts"): a type it was not made with is the caller's. The caller
// closes it; it keeps the namespace after Release.
func (h *Holder) Open(name string) (int, error) {
	if h.released {
		return -1, fmt.Errorf("open %s namespace: released", name)
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(int(h.h.pid))+"/ns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s namespace: %w", name, err)
	}
	return fd, nil
}

// Release ends the holder, collected behind the call (nothing waits for it to exit): namespaces
// no descriptor holds go with it. Later calls do nothing.
func (h *Holder) Release() {
	if h.released {
		return
	}
	h.released = true
	// A holder that could not be collected keeps its stack mapped (bulwark_userns_stop): it
	// may still run on it. There is nothing else to undo.
	hh := h.h
	go C.bulwark_userns_stop(&hh)
}
