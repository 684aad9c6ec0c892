package main

import (
	"bulwark.dev/bulwark/tests/internal/report"

	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

func landlock() *report.Landlock {
	l := &report.Landlock{}
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		l.ABIError = errName(e)
	} else {
		l.ABI = int(v)
	}
	if inInitialUserNS() {
		l.DevCreate = "refused: not in a sandbox"
		return l
	}
	p := fmt.Sprintf("/dev/.bulwark-probe-%d", os.Getpid())
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err == nil {
		unix.Close(fd)
		unix.Unlink(p)
	}
	l.DevCreate = errName(err)
	return l
}

func execFrom(dir string) *report.ExecFrom {
	r := &report.ExecFrom{Dir: dir}
	var sfs unix.Statfs_t
	if unix.Statfs(dir, &sfs) == nil {
		r.NoExec = sfs.Flags&unix.ST_NOEXEC != 0
	}
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		r.CopyError = "read self: " + errName(err)
		return r
	}
	dst := filepath.Join(dir, fmt.Sprintf("bulwark-probe-copy-%d", os.Getpid()))
	if err := os.WriteFile(dst, self, 0o755); err != nil {
		r.CopyError = errName(err)
		return r
	}
	defer os.Remove(dst)
	// ForkExec reports the child's execve errno itself (os/exec would pre-check with access(2)).
	pid, err := syscall.ForkExec(dst, []string{dst, "true"}, &syscall.ProcAttr{})
	if err != nil {
		r.ExecError = errName(err)
		return r
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		r.ExecError = "wait: " + errName(err)
	}
	return r
}
