package main

import (
	"bulwark.dev/bulwark/tests/internal/report"

	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// tcp binds and listens on each port of 127.0.0.1, then connects to each, with plain TCP
// sockets (Go's net package would try MPTCP first). Each is "" on success or the errno name.
func tcp(ports []string) map[string]string {
	m := map[string]string{}
	var open []int
	for _, p := range ports {
		port, err := strconv.Atoi(p)
		if err != nil {
			fatalf("tcp: bad port %q", p)
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			m["bind:"+p] = "socket: " + errName(err)
			continue
		}
		open = append(open, fd)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			m["bind:"+p] = errName(err)
			continue
		}
		m["bind:"+p] = errName(unix.Listen(fd, 1))
	}
	for _, p := range ports {
		port, _ := strconv.Atoi(p)
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			m["connect:"+p] = "socket: " + errName(err)
			continue
		}
		m["connect:"+p] = errName(unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}))
		unix.Close(fd)
	}
	for _, fd := range open {
		unix.Close(fd)
	}
	return m
}

// spawn starts up to n children sleeping in the sandbox, reports how many started and why the
// next one could not, then kills and reaps them all.
func spawn(n int) *report.Spawn {
	r := &report.Spawn{}
	var procs []*os.Process
	for i := 0; i < n; i++ {
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "30"}, &os.ProcAttr{})
		if err != nil {
			r.Error = errName(err)
			break
		}
		procs = append(procs, p)
		r.Started++
	}
	for _, p := range procs {
		p.Kill()
		p.Wait()
	}
	return r
}

// unixListen listens on the abstract unix socket @name and accepts (and closes) connections for
// as long as it lives.
func unixListen(name string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + name}); err != nil {
		return err
	}
	if err := unix.Listen(fd, 16); err != nil {
		return err
	}
	for {
		c, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return err
		}
		unix.Close(c)
	}
}

// unixConnect connects to the abstract unix socket @name.
func unixConnect(name string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + name})
}
