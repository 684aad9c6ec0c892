package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/engine"
)

// spawnMonitor starts a decided plan's monitor (engine.SpawnMonitor): see reaped.
func (s *Server) spawnMonitor(plan *engine.Plan) (string, error) {
	var id string
	err := s.reaped(func() (err error) {
		id, err = engine.SpawnMonitor(plan, s.monitor)
		return err
	})
	return id, err
}

// reaped runs fn, which may start the state root's supervisor (a monitor), and reaps that
// monitor when it ends. The engine releases the monitors it starts without waiting for them (the
// CLI exits and the monitor is re-parented to init), but the daemon lives on: its monitors are
// its children and would stay zombies. The monitor is the new child of this process whose
// command is the monitor's: spawns are serialised, so exactly one such child appears during one.
func (s *Server) reaped(fn func() error) error {
	s.spawnMu.Lock()
	defer s.spawnMu.Unlock()
	before := children()
	err := fn()
	for pid := range children() {
		if before[pid] || !s.isMonitor(pid) {
			continue
		}
		go func() {
			var ws unix.WaitStatus
			for {
				if _, err := unix.Wait4(pid, &ws, 0, nil); err != unix.EINTR {
					return
				}
			}
		}()
	}
	return err
}

// isMonitor says whether child pid runs this binary's monitor command: its command line says so,
// or it already ended (a zombie has none) as a re-executed /proc/self/exe.
func (s *Server) isMonitor(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil {
		return false
	}
	if len(cmdline) > 0 {
		return strings.Contains(string(cmdline), "\x00"+MonitorCommand+"\x00")
	}
	comm, _ := os.ReadFile(dir + "/comm")
	return strings.TrimSpace(string(comm)) == filepath.Base(s.monitor[0])
}

// children lists this process's children (every thread's).
func children() map[int]bool {
	out := map[int]bool{}
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out[pid] = true
			}
		}
	}
	return out
}
