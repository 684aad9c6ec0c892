package main

import (
	"bulwark.dev/bulwark/tests/internal/report"

	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// memfdExec tries to run bytes that are not in the image through a memfd: a copy of this binary
// written into memfd_create's file and executed through /proc/self/fd/N (what fexecve and
// execveat(fd, "", AT_EMPTY_PATH) do in the kernel), after trying to make it executable.
func memfdExec() *report.MemfdExec {
	r := &report.MemfdExec{}
	if b, err := os.ReadFile("/proc/sys/vm/memfd_noexec"); err == nil {
		r.Sysctl = strings.TrimSpace(string(b))
	} else {
		r.Sysctl = errName(err)
	}
	// MFD_EXEC asks for an executable memfd explicitly.
	if fd, err := unix.MemfdCreate("bulwark-probe-exec", unix.MFD_CLOEXEC|unix.MFD_EXEC); err != nil {
		r.CreateExec = errName(err)
	} else {
		unix.Close(fd)
	}
	fd, err := unix.MemfdCreate("bulwark-probe", unix.MFD_CLOEXEC)
	if err != nil {
		r.Create = errName(err)
		return r
	}
	defer unix.Close(fd)
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		r.Create = "read self: " + errName(err)
		return r
	}
	if _, err := unix.Write(fd, self); err != nil {
		r.Create = "write: " + errName(err)
		return r
	}
	r.Chmod = "ok"
	if err := unix.Fchmod(fd, 0o755); err != nil {
		r.Chmod = errName(err)
	}
	r.Exec = execFD(fd)
	return r
}

// execFD executes /proc/self/fd/fd in a child ("probe exit 7") and reports "" when the payload
// ran, else the execve errno or what went wrong.
func execFD(fd int) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	// ForkExec reports the child's execve errno itself (os/exec would pre-check with access(2)).
	pid, err := syscall.ForkExec(p, []string{"payload", "exit", "7"}, &syscall.ProcAttr{Files: []uintptr{0, 1, 2}})
	if err != nil {
		return errName(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return "wait: " + errName(err)
	}
	if ws.Exited() && ws.ExitStatus() == 7 {
		return ""
	}
	return "payload status " + strconv.Itoa(int(ws))
}
