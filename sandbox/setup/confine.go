package setup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/sandbox/internal/caps"
	"bulwark.dev/bulwark/sandbox/internal/landlock"
)

// oomScoreAdjIs reports whether the process already has score v. A setup child is
// non-dumpable (CVE-2019-5736) with a memory map made outside the user namespace, so its
// /proc/self files are owned by an id the container cannot map and opening oom_score_adj for
// writing fails with EACCES; Docker asks for the inherited value (0) on every exec, which needs
// no write.
func oomScoreAdjIs(v int) bool {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(v)
}

// finishProcess applies the process-level layers in their fixed order and executes the workload:
// console, rlimits, user + capabilities, cwd, no_new_privs, Landlock, descriptor hygiene, seccomp
// (last: it may forbid what the earlier steps need). Only then is "ready" sent. Init then waits on
// the exec fifo for Start; an exec'd process goes on at once. Returns only on failure.
func finishProcess(ch *Channel, p *ProcessPlan, fifo int, detached func() error, clk *StepClock) *InitError {
	if p.Terminal {
		if err := setupConsole(ch, p); err != nil {
			return stepError("console", "allocate pty", "/dev/ptmx", err)
		}
	}
	for _, rl := range p.Rlimits {
		// Exactly what the floor recorded: it already clamped each limit to the runtime's own hard
		// limit, the most a process without CAP_SYS_RESOURCE in the host's user namespace gets.
		// syscall.Setrlimit (not unix.Prlimit) so the Go runtime does not restore its own
		// RLIMIT_NOFILE at execve.
		if err := syscall.Setrlimit(rl.Resource, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return stepError("rlimits", "setrlimit "+strconv.Itoa(rl.Resource), "", err)
		}
	}
	if p.OOMScoreAdj != nil && !oomScoreAdjIs(*p.OOMScoreAdj) {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return stepError("process", "oom_score_adj", "/proc/self/oom_score_adj", err)
		}
	}
	// Before the user switch and Landlock: the container's /etc/passwd may be readable by root only.
	p.Env = withHome(p.Env, p.UID)
	set := caps.Set(p.Caps)
	if p.UID == 0 && p.GID == 0 && len(p.Groups) == 0 {
		if err := caps.ClearGroups(); err != nil {
			return stepError("user", "setgroups", "", err)
		}
		if err := caps.Apply(set); err != nil {
			return stepError("caps", "apply", "", err)
		}
	} else {
		groups := make([]int, len(p.Groups))
		for i, g := range p.Groups {
			groups[i] = int(g)
		}
		if err := caps.SwitchUser(int(p.UID), int(p.GID), groups, set); err != nil {
			return stepError("caps", "switch user", "", err)
		}
	}
	if err := enterCwd(p.Cwd); err != nil {
		return stepError("process", "cwd", p.Cwd, err)
	}
	exe, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return stepError("process", stepFindExecutable, p.Args[0], err)
	}
	clk.Lap("child:user+caps")
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return stepError("no_new_privs", "prctl(PR_SET_NO_NEW_PRIVS)", "", err)
	}
	// SELinux/AppArmor take effect at the execve; their /proc writes must precede Landlock.
	if err := p.MAC.ApplyExec(); err != nil {
		return stepError("mac", "apply on exec", "", err)
	}
	clk.Lap("child:nnp+mac")
	// A writable mount reached through an image symlink was mounted at the link's target (inside
	// the root): grant that real path, which Landlock insists on.
	for _, list := range [][]string{p.Landlock.Writable, p.Landlock.WritableExec} {
		for i, w := range list {
			if real, err := filepath.EvalSymlinks(w); err == nil {
				list[i] = real
			}
		}
	}
	if err := landlock.Restrict(p.Landlock); err != nil {
		return stepError("landlock", "restrict", "", err)
	}
	clk.Lap("child:landlock")
	// The host's tree must be gone before the descriptors are checked (the detaching thread holds
	// one of its root) and before anything of the container runs.
	if detached != nil {
		if err := detached(); err != nil {
			return stepError("mounts", "detach the host's tree", "/", err)
		}
	}
	if err := fdHygiene(); err != nil {
		return stepError("fds", "close host descriptors", "/proc/self/status", err)
	}
	clk.Lap("child:fds")
	if err := loadSeccomp(p.Seccomp); err != nil {
		return stepError("seccomp", "load", "", err)
	}
	clk.Lap("child:seccomp")
	if err := ch.Send(&Message{Kind: KindReady, Steps: clk.Steps, Started: clk.Started.UnixNano()}); err != nil {
		os.Exit(1) // the runtime is gone: nobody would start or hear us
	}
	ch.Close()
	if fifo >= 0 {
		var b [1]byte
		for {
			n, err := unix.Read(fifo, b[:])
			if err == unix.EINTR {
				continue
			}
			if err != nil || n != 1 {
				os.Exit(1)
			}
			break
		}
		unix.Close(fifo)
	}
	err = unix.Exec(exe, p.Args, p.Env)
	// Too late for the channel: the runtime sees the exit status, the user the message. The
	// command was found above, so this is mostly "cannot execute" (E2BIG, ENOEXEC, a missing ELF
	// interpreter is ENOENT): the same statuses as before the fifo, from the same mapping.
	fmt.Fprintf(os.Stderr, "bulwark: exec %s: %v\n", exe, err)
	errno, _ := err.(syscall.Errno)
	os.Exit(errnoStatus(errno))
	return nil
}

// enterCwd changes to cwd and checks the result is inside the container's root. CVE-2024-21626:
// a cwd reached through a leaked descriptor (/proc/self/fd/N) sits outside the root. getcwd(2)
// then answers "(unreachable)…" or a path that leads elsewhere, so the check is that the name
// getcwd gives, resolved from "/", is the very directory we are in.
func enterCwd(cwd string) error {
	if !path.IsAbs(cwd) {
		return fmt.Errorf("cwd %q is not absolute", cwd)
	}
	if err := unix.Chdir(cwd); err != nil {
		return err
	}
	wd, err := unix.Getwd()
	if err != nil {
		return fmt.Errorf("getcwd: %w", err)
	}
	var here, there unix.Stat_t
	if !strings.HasPrefix(wd, "/") || unix.Stat(".", &here) != nil || unix.Stat(wd, &there) != nil ||
		here.Dev != there.Dev || here.Ino != there.Ino {
		return fmt.Errorf("cwd %q resolves outside the container root (%q)", cwd, wd)
	}
	return nil
}

// fdHygiene marks every descriptor above stderr close-on-exec and verifies it (openFDs), so no
// host descriptor (state dir, socket, memfd) survives into the workload (CVE-2024-21626).
func fdHygiene() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	fds, err := openFDs()
	closeSelfStatus()
	if err != nil {
		return err
	}
	for _, fd := range fds {
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			return fmt.Errorf("descriptor %d would leak into the container", fd)
		}
	}
	return nil
}

// closeInherited closes every descriptor above the donated ones that arrived without
// close-on-exec: the runtime meant to pass none, so any such descriptor is a leak from the
// runtime's caller (CVE-2024-21626). The Go runtime's own descriptors are all close-on-exec.
func closeInherited(keep int) {
	fds, err := openFDs()
	if err != nil {
		return
	}
	for _, fd := range fds {
		if fd <= keep {
			continue
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// openFDs lists the open descriptors above stderr: each number below the size of the process's
// descriptor table (FDSize in /proc/self/status, which no descriptor reaches) that fcntl finds
// open. Listing /proc/self/fd instead would leave a proc inode and dentry cached per descriptor
// for as long as the container's init lives (issue 14: about 20 per container, 15 kB of host
// memory); this looks up one proc entry.
func openFDs() ([]int, error) {
	b, err := readSelfStatus()
	if err != nil {
		return nil, err
	}
	size := -1
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			size, err = strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("/proc/self/status FDSize %q: %w", v, err)
			}
		}
	}
	if size < 0 {
		return nil, errors.New("/proc/self/status has no FDSize")
	}
	var fds []int
	for fd := 3; fd < size; fd++ {
		// F_GETFD never blocks: no need to tell the Go scheduler (a few hundred calls).
		if _, _, errno := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_GETFD, 0); errno == 0 {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}

// selfStatus is /proc/self/status, opened when the setup child starts (openSelfStatus, before
// pivot_root) and read anew by every openFDs (a read from offset 0 renders the file again) until
// fdHygiene closes it. Opened after pivot_root, it would leave the container's procfs an inode and
// a dentry for /proc/1 and for its status, cached for the container's whole life (issue 14);
// before, the procfs the child starts on is one of its own (internal/nsenter's privateProc),
// which goes with the host's tree. -1 when it could not be opened: openFDs opens the file itself.
var selfStatus = -1

func openSelfStatus() {
	if fd, err := unix.Open("/proc/self/status", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		selfStatus = fd
	}
}

func closeSelfStatus() {
	if selfStatus >= 0 {
		unix.Close(selfStatus)
		selfStatus = -1
	}
}

// readSelfStatus returns the current content of /proc/self/status.
func readSelfStatus() ([]byte, error) {
	if selfStatus < 0 {
		return os.ReadFile("/proc/self/status")
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Pread(selfStatus, buf, int64(len(out)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read /proc/self/status: %w", err)
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// lookPath resolves the executable as execvp would, with the process's own PATH.
func lookPath(arg0 string, env []string) (string, error) {
	if strings.Contains(arg0, "/") {
		return arg0, checkExec(arg0)
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, arg0)
		if checkExec(p) == nil {
			return p, nil
		}
	}
	// runc's wording: Docker turns "executable file not found" into exit status 127.
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH (%s): %w", arg0, pathEnv, unix.ENOENT)
}

func checkExec(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// execve answers EACCES for a directory; Docker maps "permission denied" to 126.
		return fmt.Errorf("%s is a directory: %w", p, unix.EACCES)
	}
	return unix.Access(p, unix.X_OK)
}
