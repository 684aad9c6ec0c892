package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
