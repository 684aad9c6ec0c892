package supervisor

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/internal/procstat"
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

// pidfdGetInfo is PIDFD_GET_INFO (Linux 6.13): _IOWR(PIDFS_IOCTL_MAGIC 0xFF, 11, struct
// pidfd_info of its first, 64-byte version), and pidfdInfoExit asks for the exit status
// (PIDFD_INFO_EXIT, Linux 6.15), kept for every holder of a pidfd once the process is reaped.
const (
	pidfdGetInfo   = 0xC040FF0B
	pidfdInfoExit  = 1 << 3
	pidfdInfoSize  = 64
	pidfdExitField = 60 // __s32 exit_code
)

// ExitStatus returns the shell-style exit status (the code, or 128+signal) of the process pid
// started at start that has exited, whoever its parent: from pidfd (opened while it ran) once
// it was reaped, or from its zombie's stat before. ok is false while it runs, and when neither
// has it (the pidfd was opened after it exited, or the kernel keeps no exit status in pidfds).
func ExitStatus(pidfd, pid int, start uint64) (status int, ok bool) {
	// Reaped between the two reads: the second pidfd read has it.
	for range 2 {
		if ws, ok := pidfdExit(pidfd); ok {
			return shellStatus(unix.WaitStatus(ws)), true
		}
		if ws, ok := procstat.ZombieStatus(pid, start); ok {
			return shellStatus(unix.WaitStatus(ws)), true
		}
	}
	return 0, false
}

// pidfdExit reads the wait status a pidfd keeps once its process was reaped.
func pidfdExit(pidfd int) (int, bool) {
	if pidfd < 0 {
		return 0, false
	}
	var info [pidfdInfoSize]byte
	binary.NativeEndian.PutUint64(info[:], pidfdInfoExit)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(pidfd), pidfdGetInfo, uintptr(unsafe.Pointer(&info[0]))); errno != 0 {
		return 0, false
	}
	if binary.NativeEndian.Uint64(info[:])&pidfdInfoExit == 0 {
		return 0, false
	}
	return int(int32(binary.NativeEndian.Uint32(info[pidfdExitField:]))), true
}
