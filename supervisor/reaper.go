// Package supervisor keeps detached containers supervised independently of any client's or
// daemon's lifetime, at a fixed cost per state root instead of a process per container: one
// reaper (a child subreaper, the parent of every detached container's init once the process that
// created it exits) records each exit status in a file, and starts and restarts the worker that
// serves the supervisor socket. It knows nothing of containers: the engine runs the worker and
// the helpers (ServeMonitor).
//
// A state root's supervisor directory holds:
//
//	reaper.lock   held by the one reaper of the state root
//	start.lock    serialises clients starting a reaper (Dial)
//	sock          the worker's socket (Listen)
//	exits/        <pid>-<starttime>: the wait status of every child the reaper collected
//	io/           the workers' per-container files (the engine's log FIFOs)
//	supervisor.log the reaper's and the workers' stderr
package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/procstat"
)

// The environment tells a re-executed binary which part of the supervisor it is.
const (
	// EnvMode is ModeReaper, ModeWorker or ModeHelper.
	EnvMode = "_BULWARK_SUPERVISOR"
	// EnvDir is the supervisor directory.
	EnvDir = "_BULWARK_SUPERVISOR_DIR"

	ModeReaper = "reaper"
	ModeWorker = "worker"
	ModeHelper = "helper"
)

// NotifyFD is the worker's descriptor on which the reaper writes a byte after each exit it
// recorded (the records themselves are files: a worker started later finds them all).
const NotifyFD = 3

// Backoff bounds between restarts of a worker that died: it doubles from the first to the last,
// and starts again from the first once a worker has lived longer than backoffReset.
const (
	backoffFirst = 100 * time.Millisecond
	backoffMax   = 10 * time.Second
	backoffReset = 10 * time.Second
)

// RunReaper is the reaper's body: it takes the state root's reaper lock (another reaper
// holding it: it returns, lockReaper), becomes a child subreaper and runs the worker (argv, with
// EnvMode=ModeWorker), restarting it with back-off whenever it dies; it records the exit
// status of every other child it collects (the containers' inits) and keeps the worker's
// descriptors (store.go). It returns once the worker exits with status 0 (idle: it supervises
// nothing) and no other child is left, or once dir is removed (its state root is gone: it
// writes nothing more and starts no worker that would make the state root again).
func RunReaper(dir string, argv []string) error {
	if err := closeInherited(); err != nil {
		return err
	}
	d, err := openDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	unlock, ok, err := lockReaper(dir)
	if err != nil || !ok {
		return err
	}
	defer unlock()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("supervisor: become a child subreaper: %w", err)
	}
	// Outlives the terminal and the client that started it; a container's exit status is never
	// lost to a SIGPIPE.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	if err := os.Mkdir(filepath.Join(dir, "exits"), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("supervisor: %w", err)
	}
	store := &fdStore{fds: map[string]int{}}
	backoff := backoffFirst
	for {
		notify, pid, err := startWorker(dir, argv, store)
		if err != nil {
			return err
		}
		started := time.Now()
		code := reapUntil(d, dir, pid, notify)
		notify.Close()
		if code == 0 && !haveChildren() {
			return nil
		}
		if removed(d) {
			fmt.Fprintf(os.Stderr, "supervisor: %s was removed: leaving\n", dir)
			return nil
		}
		if time.Since(started) > backoffReset {
			backoff = backoffFirst
		}
		fmt.Fprintf(os.Stderr, "supervisor: worker %d ended (status %d): restarting it in %v\n", pid, code, backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, backoffMax)
	}
}

// probeGrace is how long a starting reaper tries for the reaper lock while another holds it.
// Running takes the lock for an instant to look (engine.ensureSupervised, from commands that
// read a container): a reaper meeting such a look took it for another reaper and returned
// without a worker, and the client that started it (Dial) failed its run. A reaper holds the
// lock for its whole life, seconds at least: one that does is not mistaken for a look.
const probeGrace = 100 * time.Millisecond

// lockReaper takes dir's reaper lock, trying again for probeGrace while another holds it; ok is
// false when another reaper holds it.
func lockReaper(dir string) (unlock func(), ok bool, err error) {
	deadline := time.Now().Add(probeGrace)
	for {
		unlock, ok, err = TryLock(filepath.Join(dir, "reaper.lock"))
		if err != nil || ok || time.Now().After(deadline) {
			return unlock, ok, err
		}
		time.Sleep(time.Millisecond)
	}
}

// openDir holds dir, to notice its removal (removed).
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("supervisor: open %s: %w", dir, err)
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// removed reports whether the directory d holds was removed (a removed directory has no link
// left; one only renamed still has its links).
func removed(d *os.File) bool {
	var st unix.Stat_t
	return unix.Fstat(int(d.Fd()), &st) != nil || st.Nlink == 0
}

// startWorker starts the worker with the notification pipe as NotifyFD and its end of the
// descriptor store as StoreFD.
func startWorker(dir string, argv []string, store *fdStore) (*os.File, int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, 0, fmt.Errorf("supervisor: notification pipe: %w", err)
	}
	defer r.Close()
	// A worker that stops reading must never block the reaper: a full pipe drops the byte (the
	// record is a file all the same).
	if err := unix.SetNonblock(int(w.Fd()), true); err != nil {
		w.Close()
		return nil, 0, err
	}
	st, err := store.storePair()
	if err != nil {
		w.Close()
		return nil, 0, err
	}
	defer st.Close()
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Dir:   "/",
		Env:   append(environWithout(EnvMode, EnvDir), EnvMode+"="+ModeWorker, EnvDir+"="+dir),
		Files: []*os.File{nil, os.Stderr, os.Stderr, r, st},
	})
	if err != nil {
		w.Close()
		return nil, 0, fmt.Errorf("supervisor: start worker: %w", err)
	}
	pid := p.Pid
	p.Release() // reaped below, by wait4
	return w, pid, nil
}

// reapUntil collects children until the worker exits and returns its status. Every other
// child's status is recorded (its start time read while it is still a zombie, so that a
// recycled pid is never taken for it) while dir (held by d) is there.
func reapUntil(d *os.File, dir string, worker int, notify *os.File) int {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1 // ECHILD: the worker is gone too
		}
		pid := siginfoPid(&info)
		start := procstat.StartTime(pid)
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			continue
		}
		status := shellStatus(ws)
		if pid == worker {
			return status
		}
		if start == 0 || removed(d) {
			continue
		}
		name := filepath.Join(dir, "exits", strconv.Itoa(pid)+"-"+strconv.FormatUint(start, 10))
		if err := atomicfile.Write(name, []byte(strconv.Itoa(status)), atomicfile.Options{}); err != nil {
			fmt.Fprintf(os.Stderr, "supervisor: record exit of %d (status %d): %v\n", pid, status, err)
			continue
		}
		notify.Write([]byte{0})
	}
}

// environWithout is the environment without the named variables (os.StartProcess, unlike
// os/exec, passes duplicates on, and the first one counts).
func environWithout(names ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}

// siginfoPid reads si_pid from a SIGCHLD siginfo (int signo, errno, code; pad on 64-bit; pid).
func siginfoPid(info *unix.Siginfo) int {
	b := (*[128]byte)(unsafe.Pointer(info))
	off := 12
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	return int(*(*int32)(unsafe.Pointer(&b[off])))
}

// haveChildren reports whether any child is left to collect.
func haveChildren() bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	return err == nil
}

// shellStatus maps a wait status to a shell-style one: the exit code, or 128+signal.
func shellStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// closeInherited closes every descriptor above stderr that the reaper inherited from the client
// that spawned it: the reaper outlives that client by design, and must not keep the client's
// files, pipes, terminals or locks open for as long as it supervises anything (nor hand them
// on to its worker). Go opens its own descriptors close-on-exec, so the inherited ones are
// exactly those without the flag.
func closeInherited() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("supervisor: list inherited descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	return nil
}
