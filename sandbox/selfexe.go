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
// executes its own file inside the container's namespaces through a writable path. It executes
// itself through a detached, read-only bind mount of its own binary (the approach of runc 1.2):
// the exe link of every setup process then points into a read-only mount that only host root
// could remount, so opening it for writing fails with EROFS — on top of the process being
// non-dumpable and running as an unprivileged host uid. The bind costs microseconds; a sealed
// memfd copy (the fallback where open_tree is unavailable) costs ~5 ms per 7 MB binary.
// The handle is made once per process and shared by every container it creates.
//
// The binary executed is the small setup helper bulwark-init (cmd/bulwark-init: the sandbox
// package's child side and nothing else) when one of the same build lies beside the runtime
// binary (see setupHelper), else the runtime binary itself. Starting the 29 MB runtime binary
// with its policy engine and every package's initialisation took a fifth of a container's
// start-to-exit and half of an exec.

var (
	selfOnce sync.Once
	selfFile *os.File
	selfErr  error
)

// runtimeBinary returns an executable handle on the setup binary that cannot be written through.
func runtimeBinary() (*os.File, error) {
	selfOnce.Do(func() {
		src, err := setupHelper()
		if err != nil {
			selfErr = err
			return
		}
		defer unix.Close(src)
		selfFile, selfErr = readonlyBinary(src)
		if selfErr != nil {
			selfFile, selfErr = memfdBinary(src)
		}
	})
	return selfFile, selfErr
}

// readonlyBinary clones the binary open at src into a detached bind mount and makes it read-only,
// nosuid and nodev. Executing /proc/self/fd/N of it runs the binary from that mount.
func readonlyBinary(src int) (*os.File, error) {
	fd, err := unix.OpenTree(src, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return nil, fmt.Errorf("open_tree own binary: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make own binary's mount read-only: %w", err)
	}
	return os.NewFile(uintptr(fd), "bulwark-runtime"), nil
}

// memfdBinary copies the binary open at src into a memfd sealed against any change.
func memfdBinary(pathFD int) (*os.File, error) {
	rfd, err := unix.Open(fdPath(pathFD), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	src := os.NewFile(uintptr(rfd), "bulwark-runtime-source")
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
