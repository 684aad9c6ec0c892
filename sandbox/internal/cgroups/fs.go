package cgroups

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The files below are read and written with plain system calls: os.File registers every file it
// opens with the runtime's poller (five more calls on Linux, each refused for a cgroupfs or
// regular file) and os.ReadFile stats it first; a container's cgroup create and delete open about
// thirty of them (issue 14).

// writeFile writes one value to a cgroup interface file. It never creates the file: a missing
// interface file means the kernel lacks the feature, which is reported as ErrUnsupported.
func writeFile(dir, name, value string) error { return writeValues(dir, name, value) }

// writeValues is writeFile for several values, one write(2) each (cgroup files parse each write
// as a whole record) through one open. The open does not truncate: a cgroup file has no contents
// to cut, and on cgroupfs (kernfs) the truncation is a setattr that gives the file its own
// attribute record (kernfs_iattrs), kept as long as the cgroup: seven per container for the
// floor's limits, 0.5 kB of kernel memory for each idle container (issue 14).
func writeValues(dir, name string, values ...string) error {
	return writeThrough(dir, name, openPath, values)
}

// writeLeaf is writeValues for a file of the container's own cgroup directory, opened so that
// nothing of it stays cached (openLeaf).
func writeLeaf(dir, name string, values ...string) error {
	return writeThrough(dir, name, openLeaf, values)
}

func writeThrough(dir, name string, open func(dir, name string, flags int) (int, error), values []string) error {
	p := filepath.Join(dir, name)
	fd, err := open(dir, name, unix.O_WRONLY)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist", ErrUnsupported, p)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, v := range values {
		if err := writeAll(fd, v); err != nil {
			return fmt.Errorf("write %q to %s: %w", v, p, err)
		}
	}
	return nil
}

// openPath opens the file name of dir by its path (openFile).
func openPath(dir, name string, flags int) (int, error) {
	return openFile(filepath.Join(dir, name), flags)
}

// The files of a container's own cgroup directories are opened by their kernfs node id
// (open_by_handle_at), not by path (issue 14). A path lookup leaves the file's dentry and inode in
// the host's caches for as long as the cgroup lives, about 0.85 kB a file: 17 files for the
// floor's limits and the join on a v1 host, 14 kB of kernel memory for each idle container. A file
// opened by its handle gets a disconnected dentry instead, which the kernel drops with its inode
// when the file is closed. The ids come from one readdir of the directory, which instantiates
// nothing, kept per directory (leafIDs). Whatever cannot go that way — a caller without
// CAP_DAC_READ_SEARCH, a directory that is not a cgroupfs one (tests), an id gone stale — is opened
// by path as before. The directory itself is looked up by path: the container's cgroup mounts pin
// its dentry anyway.

// fileIDKernfs is FILEID_KERNFS, the handle type whose 8 bytes are a kernfs node id (the inode
// number readdir gives on a 64-bit kernel, generation included).
const fileIDKernfs = 0xfe

// leafIDs maps a cgroup directory (its device and inode number: an id is never reused, so a
// directory made again under the same name is a new entry) to the node id of each of its files.
var leafIDs struct {
	mu   sync.Mutex
	dirs map[[2]uint64]map[string]uint64 // guarded by mu
}

// maxLeafDirs bounds leafIDs in a long-lived process: past it the map starts over.
const maxLeafDirs = 64

// openLeaf opens the interface file name of the cgroup directory dir (flags plus O_CLOEXEC) by
// its handle where it can, and by path otherwise; the error is an *os.PathError naming the file.
func openLeaf(dir, name string, flags int) (int, error) {
	p := filepath.Join(dir, name)
	dfd, err := openFile(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return -1, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(dfd)
	if id, ok := leafID(dfd, name); ok {
		h := unix.NewFileHandle(fileIDKernfs, binary.LittleEndian.AppendUint64(make([]byte, 0, 8), id))
		for {
			fd, err := unix.OpenByHandleAt(dfd, h, flags|unix.O_CLOEXEC)
			if err == unix.EINTR {
				continue
			}
			if err == nil {
				return fd, nil
			}
			break
		}
	}
	for {
		fd, err := unix.Openat(dfd, name, flags|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// leafID is the kernfs node id of the file name in the directory open as dfd, from leafIDs or
// else one readdir; false where there is none (not a cgroupfs directory, no such file).
func leafID(dfd int, name string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Fstat(dfd, &st) != nil {
		return 0, false
	}
	key := [2]uint64{st.Dev, st.Ino}
	leafIDs.mu.Lock()
	ids, ok := leafIDs.dirs[key]
	leafIDs.mu.Unlock()
	if !ok {
		ids = readIDs(dfd)
		leafIDs.mu.Lock()
		if leafIDs.dirs == nil || len(leafIDs.dirs) >= maxLeafDirs {
			leafIDs.dirs = map[[2]uint64]map[string]uint64{}
		}
		leafIDs.dirs[key] = ids
		leafIDs.mu.Unlock()
	}
	id, ok := ids[name]
	return id, ok
}

// readIDs lists the directory open as dfd, name -> inode number, if it is a cgroupfs one; nil
// otherwise or on any error (the caller then opens by path).
//
// It runs once per cgroup directory of a create (a dozen on a v1 host), on goroutines that start
// with a small stack: an 8 KB array here made each of them grow its stack three times (each
// growth a new stack, faulted in, and a copy) and a map grown entry by entry and a string per name
// gave each directory's listing about 20 allocations. The buffer now comes from direntBufs, the map
// is made at the size of the first batch, and the names of a batch are sliced from one string.
func readIDs(dfd int) map[string]uint64 {
	var fs unix.Statfs_t
	if unix.Fstatfs(dfd, &fs) != nil || (fs.Type != unix.CGROUP_SUPER_MAGIC && fs.Type != unix.CGROUP2_SUPER_MAGIC) {
		return nil
	}
	buf := direntBufs.Get().(*[direntBufSize]byte)
	defer direntBufs.Put(buf)
	var ids map[string]uint64
	for {
		n, err := unix.Getdents(dfd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil
		}
		if n == 0 {
			if ids == nil {
				ids = map[string]uint64{}
			}
			return ids
		}
		count, ok := countDirents(buf[:n])
		if !ok {
			return nil
		}
		if ids == nil {
			ids = make(map[string]uint64, count)
		}
		// struct linux_dirent64: d_ino u64, d_off s64, d_reclen u16, d_type u8, d_name.
		names := string(buf[:n])
		for off := 0; off < n; {
			reclen := int(binary.LittleEndian.Uint16(buf[off+16:]))
			name := names[off+19 : off+reclen]
			if i := strings.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			ids[name] = binary.LittleEndian.Uint64(buf[off:])
			off += reclen
		}
	}
}

// direntBufSize holds a cgroup directory's listing in one getdents (the largest, a v1 memory
// controller's root, is about 1.6 KB); a larger one takes more calls.
const direntBufSize = 4 << 10

// direntBufs are readIDs' buffers, reused by the creates of a process.
var direntBufs = sync.Pool{New: func() any { return new([direntBufSize]byte) }}

// countDirents counts the records of a getdents batch; false if one is malformed.
func countDirents(b []byte) (int, bool) {
	count := 0
	for off := 0; off < len(b); count++ {
		if off+19 > len(b) {
			return 0, false
		}
		reclen := int(binary.LittleEndian.Uint16(b[off+16:]))
		if reclen < 19 || off+reclen > len(b) {
			return 0, false
		}
		off += reclen
	}
	return count, true
}

// openFile opens p (flags plus O_CLOEXEC), retrying on EINTR; the error is an *os.PathError.
func openFile(p string, flags int) (int, error) {
	for {
		fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// writeAll writes v in one write(2), retried on EINTR; a short write is an error (a cgroup file
// takes a record whole or not at all).
func writeAll(fd int, v string) error {
	for {
		n, err := unix.Write(fd, []byte(v))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n != len(v) {
			return fmt.Errorf("short write: %d of %d bytes", n, len(v))
		}
		return nil
	}
}

// readAll reads the whole file p.
func readAll(p string) ([]byte, error) {
	fd, err := openFile(p, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return readFD(fd, p)
}

// readFD reads the whole file open as fd (named p in errors) and closes it.
func readFD(fd int, p string) ([]byte, error) {
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func readFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	data, err := readAll(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(data)), nil
}

// readLeaf is readFile for a file of the container's own cgroup directory (openLeaf).
func readLeaf(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	fd, err := openLeaf(dir, name, unix.O_RDONLY)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	data, err := readFD(fd, p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(data)), nil
}

func exists(dir, name string) bool {
	var st unix.Stat_t
	return unix.Stat(filepath.Join(dir, name), &st) == nil
}

// readUint parses a single-number file; "max" (v2) reads as 0, meaning no limit.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s/%s: %w", dir, name, err)
	}
	return v, nil
}

// readKey finds "key value" in a flat-keyed file (memory.events, cpu.stat, memory.oom_control).
func readKey(dir, name, key string) (uint64, error) {
	data, err := readAll(filepath.Join(dir, name))
	if err != nil {
		return 0, fmt.Errorf("read %s/%s: %w", dir, name, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == key {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s in %s/%s: %w", key, dir, name, err)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: no %q in %s/%s", ErrUnsupported, key, dir, name)
}

// readPids lists cgroup.procs. A cgroup that does not exist (never created, or destroyed) has no
// processes, which keeps Delete after a crash simple.
func readPids(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse pid %q in %s/cgroup.procs: %w", f, dir, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// removeDir removes one cgroup directory. Missing is fine (idempotent Destroy). EBUSY is retried
// briefly because a killed task leaves its cgroup a moment after the signal is delivered.
func removeDir(dir string) error {
	var err error
	for delay := time.Millisecond; delay < 2*time.Second; delay *= 2 {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(delay)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}

// waitFor polls cond until it reports true or timeout passes; freezing is asynchronous.
func waitFor(timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for delay := 100 * time.Microsecond; ; delay = min(delay*2, 50*time.Millisecond) {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", timeout)
		}
		time.Sleep(delay)
	}
}
