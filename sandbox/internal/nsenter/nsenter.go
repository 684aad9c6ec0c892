// Package nsenter joins a running container's namespaces from a C constructor, before the Go
// runtime starts threads (setns into a user namespace requires a single-threaded caller): every
// namespace of a container for an exec (Env), or the user namespace a new container's init
// starts in — its pod sandbox's, or one made for it (EnvJoin). It acts only when one of them is
// set; linking it in is otherwise inert.
package nsenter

// #cgo CFLAGS: -Wall -Werror -std=gnu11
// int bulwark_leaks_closed(void);
import "C"

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Env names the variable holding the pid whose namespaces the re-executed runtime joins.
const Env = "_BULWARK_NSENTER"

// EnvJoin names the variable that starts a container's init in a user namespace (descriptor 6:
// its pod's, or one made for it) instead: its value is the clone flags of the namespaces to
// create there.
const EnvJoin = "_BULWARK_NSJOIN"

// LeaksClosed reports whether the constructor closed every descriptor above the runtime's before
// it forked (close_range): the process then holds none that leaked from the runtime's caller.
// False when no constructor acted, or close_range failed.
func LeaksClosed() bool { return C.bulwark_leaks_closed() != 0 }

// steps names the constructor's steps by the numbers it reports.
var steps = map[int32]string{
	1: "prctl(PR_SET_DUMPABLE)", 30: "become container root", 31: "fork", 40: "setns user (the pod's)", 41: "unshare the container's namespaces",
}

var nsNames = []string{"net", "user", "ipc", "uts", "pid", "cgroup", "mnt"}

// ReadReport reads the constructor's report from the sync pipe: the host pid of the process that
// continues into Go inside the container's namespaces, or the step that failed.
func ReadReport(r io.Reader) (int, error) {
	var rep struct{ Pid, Step, Errno int32 }
	if err := binary.Read(r, binary.NativeEndian, &rep); err != nil {
		return 0, fmt.Errorf("nsenter: no report: %w", err)
	}
	if rep.Pid > 0 {
		return int(rep.Pid), nil
	}
	step := steps[rep.Step]
	switch {
	case rep.Step >= 10 && rep.Step < 10+int32(len(nsNames)):
		step = "open namespace " + nsNames[rep.Step-10]
	case rep.Step >= 20 && rep.Step < 20+int32(len(nsNames)):
		step = "setns " + nsNames[rep.Step-20]
	}
	return 0, &Error{Step: step, Errno: int(rep.Errno)}
}

// Error is a failure of the constructor.
type Error struct {
	Step  string
	Errno int
}

func (e *Error) Error() string { return fmt.Sprintf("nsenter: %s: errno %d", e.Step, e.Errno) }
