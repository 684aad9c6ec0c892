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

// writeFile writes one value to a cgroup interface file. It never creates the file: a missing
// interface file means the kernel lacks the feature, which is reported as ErrUnsupported.
func writeFile(dir, name, value string) error { return writeValues(dir, name, value) }

// writeValues is writeFile for several values, one write(2) each (cgroup files parse each write
// as a whole record) through one open.
func writeValues(dir, name string, values ...string) error {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist", ErrUnsupported, p)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	for _, v := range values {
		if _, err := f.WriteString(v); err != nil {
			return fmt.Errorf("write %q to %s: %w", v, p, err)
		}
	}
	return nil
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
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return strings.TrimSpace(string(data)), nil
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
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
	data, err := os.ReadFile(filepath.Join(dir, name))
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
