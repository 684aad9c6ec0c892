package sandbox

import (
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// CVE-2019-5736 (runc /proc/self/exe overwrite): a process inside the container that can open the
// runtime binary for writing (through /proc/<init>/exe) replaces it on the host. The runtime never
// executes its own file inside the container's namespaces: it executes a sealed memfd copy. The
// seals (write, grow, shrink, seal) make the copy immutable, so even a process holding it cannot
// change what the next container runs, and the host file is never reachable from inside. Every
// runtime process inside the namespaces is also made non-dumpable until it executes the workload.
// The copy is made once per process and shared by every container it creates.

var (
	selfOnce sync.Once
	selfFile *os.File
	selfErr  error
)

// sealedSelf returns the sealed, executable memfd copy of the running binary.
func sealedSelf() (*os.File, error) {
	selfOnce.Do(func() { selfFile, selfErr = makeSealedSelf() })
	return selfFile, selfErr
}

func makeSealedSelf() (*os.File, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("bulwark-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		// Kernels before 6.3 know no MFD_EXEC; their memfds are executable by default.
		fd, err = unix.MemfdCreate("bulwark-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "bulwark-runtime")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy own binary to memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal runtime memfd: %w", err)
	}
	return f, nil
}
