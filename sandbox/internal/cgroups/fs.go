package cgroups

import (
	"bufio"
	"bytes"
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
	p := filepath.Join(dir, name)
	fd, err := openFile(p, unix.O_WRONLY)
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

// parallel runs every fn on a goroutine of its own and returns their errors joined.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func readFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	data, err := readAll(p)
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
