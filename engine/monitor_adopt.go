package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/pidfd"
	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/supervisor"
)

// What a worker keeps of a container in its reaper's store (supervisor.Store), by name
// <id>.<kind>: its init's pidfd, the network namespace it was set up in, its terminal's master.
const (
	keptPidfd = "pidfd"
	keptNetns = "netns"
	keptPty   = "pty"
)

func keptName(id, kind string) string { return id + "." + kind }

// exitLost is why a container has no exit status: it ended while no supervisor held it (the
// reaper, its parent, and the worker holding its pidfd were both gone), so nothing kept it.
const exitLost = "exit status lost: supervisor died (the container ended while no supervisor held it)"

// adopt takes over the state root's containers after a supervisor died (or at the first start),
// with what the reaper kept for the last worker: detached ones still running are supervised
// again (their log FIFOs reopened by path: the pipes kept what the workload wrote meanwhile;
// their terminals and network namespaces from the store), those that ended meanwhile get the
// status the reaper recorded, or their pidfd or zombie kept (else "exit status lost"), and
// foreground runs' clients are watched again. What the store kept for no container is dropped.
func (w *worker) adopt(kept map[string]*os.File) {
	take := func(id, kind string) *os.File {
		f := kept[keptName(id, kind)]
		delete(kept, keptName(id, kind))
		return f
	}
	type proc struct {
		pid   int
		start uint64
	}
	keep := map[proc]bool{}
	names, _ := w.e.recordNames()
	for _, name := range names {
		m, err := w.e.readMeta(name)
		if err != nil || m.Exit != nil || m.Started.IsZero() {
			continue
		}
		netns := take(m.ID, keptNetns)
		if !m.Detached {
			if err := w.watch(m.ID, netns); err != nil {
				fmt.Fprintf(os.Stderr, "supervisor: watch %s: %v\n", m.ID, err)
			}
			closeFiles(netns)
			continue
		}
		s := &supervised{id: m.ID, pid: m.Pid, start: m.PidStart, netns: netns, pidfd: take(m.ID, keptPidfd), dropped: make(chan struct{})}
		pty := take(m.ID, keptPty)
		if !procstat.Alive(m.Pid, m.PidStart) {
			closeFiles(pty)
			code, why := w.endedUnheld(s)
			w.track(s)
			go w.finish(s, code, why)
			continue
		}
		keep[proc{m.Pid, m.PidStart}] = true
		s.orphan = procstat.Parent(m.Pid) != w.reaper
		var rds [2]*os.File
		if pty == nil {
			for i, stream := range []string{"stdout", "stderr"} {
				if f, err := os.OpenFile(w.fifoPath(m.ID, stream), os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
					rds[i] = f
				}
			}
		}
		if err := w.supervise(s, rds[0], rds[1], pty); err != nil {
			fmt.Fprintf(os.Stderr, "supervisor: adopt %s: %v\n", m.ID, err)
		}
	}
	for name, f := range kept {
		f.Close()
		if w.store != nil {
			w.store.Drop(name)
		}
	}
	supervisor.PruneExits(w.dir, func(pid int, start uint64) bool { return keep[proc{pid, start}] })
	// The FIFOs of containers removed while no supervisor ran.
	fifos, _ := os.ReadDir(filepath.Join(w.dir, "io"))
	for _, f := range fifos {
		id := strings.TrimSuffix(strings.TrimSuffix(f.Name(), ".stdout"), ".stderr")
		w.mu.Lock()
		_, ok := w.ctrs[id]
		w.mu.Unlock()
		if !ok {
			os.Remove(filepath.Join(w.dir, "io", f.Name()))
		}
	}
}

// endedUnheld is the exit status of a container found ended at adoption: the reaper's record,
// else what its kept pidfd or its zombie still says, else lost.
func (w *worker) endedUnheld(s *supervised) (int, string) {
	if st, ok := supervisor.TakeExit(w.dir, s.pid, s.start); ok {
		return st, ""
	}
	if st, ok := supervisor.ExitStatus(fileFD(s.pidfd), s.pid, s.start); ok {
		return st, ""
	}
	return -1, exitLost
}

func (w *worker) track(s *supervised) {
	w.mu.Lock()
	w.ctrs[s.id] = s
	w.mu.Unlock()
}

// watch watches the client of a foreground container: when it dies without having recorded the
// container's exit (SIGKILLed), the container is killed and collected (removed with --rm, its
// network detached in netns, the client's).
func (w *worker) watch(id string, netns *os.File) error {
	m, err := w.e.readMeta(id)
	if err != nil {
		return err
	}
	if m.Detached || m.Client == nil {
		return fmt.Errorf("container %s has no client to watch", id)
	}
	w.mu.Lock()
	if w.watches[id] {
		w.mu.Unlock()
		return nil
	}
	w.watches[id] = true
	w.mu.Unlock()
	ns, err := dupFile(netns)
	if err != nil {
		return err
	}
	if ns != nil && w.store != nil {
		if err := w.store.Put(keptName(id, keptNetns), ns); err != nil {
			fmt.Fprintf(os.Stderr, "supervisor: %v\n", err)
		}
	}
	client, alive := pidfdOf(m.Client.Pid, m.Client.Start)
	go func() {
		if alive {
			pidfd.WaitExit(client)
		}
		closeFiles(client)
		inNetns(ns, func() error { w.e.collectForeground(id); return nil })
		closeFiles(ns)
		if w.store != nil {
			w.store.Drop(keptName(id, keptNetns))
		}
		w.mu.Lock()
		delete(w.watches, id)
		w.mu.Unlock()
	}()
	return nil
}

// pidfdOf opens a pidfd of the process pid started at start (nil if it is gone: the pid is
// then free or another process's); alive is false once it has exited (a zombie's pidfd still
// gives its exit status).
func pidfdOf(pid int, start uint64) (f *os.File, alive bool) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, false
	}
	if procstat.StartTime(pid) != start {
		unix.Close(fd)
		return nil, false
	}
	return os.NewFile(uintptr(fd), "pidfd"), procstat.Alive(pid, start)
}

// fileFD is f's descriptor, -1 for nil (without making it blocking, as f.Fd would).
func fileFD(f *os.File) int {
	if f == nil {
		return -1
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	rc.Control(func(p uintptr) { fd = int(p) })
	return fd
}

func closeFiles(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}
