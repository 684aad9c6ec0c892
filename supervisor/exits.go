package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ProcStartTime returns field 22 (starttime) of /proc/<pid>/stat, or 0 if the process is gone.
// A pid and its start time name one process for good (a pid alone may be recycled).
func ProcStartTime(pid int) uint64 {
	f := procStat(pid)
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// Alive reports whether the process pid started at start still runs (a zombie does not).
func Alive(pid int, start uint64) bool {
	f := procStat(pid)
	if pid <= 0 || len(f) < 20 {
		return false
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v == start && f[0] != "Z"
}

// Parent returns the parent pid of pid (0 if it is gone).
func Parent(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(f[1])
	return p
}

// procStat returns the fields of /proc/<pid>/stat after the command (state first).
func procStat(pid int) []string {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	// comm (field 2) may contain spaces and parentheses: split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// TakeExit returns and removes the recorded exit status of the process pid started at start;
// ok is false when the reaper has recorded none.
func TakeExit(dir string, pid int, start uint64) (status int, ok bool) {
	p := filepath.Join(dir, "exits", strconv.Itoa(pid)+"-"+strconv.FormatUint(start, 10))
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, false
	}
	status, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	os.Remove(p)
	return status, true
}

// PruneExits removes the records no one will take: keep says which (pid, start) still may be.
func PruneExits(dir string, keep func(pid int, start uint64) bool) {
	ents, err := os.ReadDir(filepath.Join(dir, "exits"))
	if err != nil {
		return
	}
	for _, e := range ents {
		p, s, ok := strings.Cut(e.Name(), "-")
		pid, perr := strconv.Atoi(p)
		start, serr := strconv.ParseUint(s, 10, 64)
		if !ok || perr != nil || serr != nil || !keep(pid, start) {
			if err := os.Remove(filepath.Join(dir, "exits", e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				continue
			}
		}
	}
}
