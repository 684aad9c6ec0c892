package main

import (
	"bulwark.dev/bulwark/tests/internal/report"

	"fmt"
	"os"
	"sort"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

const capDacReadSearch = 2

func shocker() *report.Shocker {
	s := &report.Shocker{Errnos: map[string]int{}}
	if c, err := caps(); err == nil {
		s.CapDacReadSearch = (c.Eff|c.Bnd|c.Prm)&(1<<capDacReadSearch) != 0
	}
	if inInitialUserNS() {
		s.Errnos["refused: not in a sandbox"] = 1
		return s
	}
	// Descriptors on every filesystem reachable from inside: the rootfs (a host filesystem) and
	// anything the runtime mounted from the host.
	var mountFDs []int
	for _, p := range []string{"/", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/bin/probe", "/tmp"} {
		if fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); err == nil {
			mountFDs = append(mountFDs, fd)
		}
	}
	// FILEID_INO32_GEN (1) handles: ext4's root is inode 2, generation 0; guess a few neighbours
	// and generations as the original exploit brute-forced them.
	for _, fd := range mountFDs {
		for ino := uint32(2); ino < 12; ino++ {
			for gen := uint32(0); gen < 4; gen++ {
				b := make([]byte, 8)
				putU32(b[0:], ino)
				putU32(b[4:], gen)
				s.Attempts++
				hfd, err := unix.OpenByHandleAt(fd, unix.NewFileHandle(1, b), unix.O_RDONLY|unix.O_CLOEXEC)
				if err != nil {
					s.Errnos[errName(err)]++
					continue
				}
				l, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(hfd))
				s.Opened = append(s.Opened, fmt.Sprintf("ino=%d gen=%d -> %s", ino, gen, l))
				unix.Close(hfd)
			}
		}
		unix.Close(fd)
	}
	return s
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func exeWatch(d time.Duration) *report.ExeWatch {
	w := &report.ExeWatch{}
	if inInitialUserNS() {
		w.Seen = append(w.Seen, report.ExeSeen{Direct: "refused: not in a sandbox"})
		return w
	}
	self := os.Getpid()
	seen := map[int]*report.ExeSeen{}
	kept := map[int]int{} // pid -> O_PATH descriptor on its exe
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, pid := range pids() {
			if pid == self || seen[pid] != nil {
				continue
			}
			e := &report.ExeSeen{Pid: pid, Reopen: map[string]int{}}
			seen[pid] = e
			p := fmt.Sprintf("/proc/%d/exe", pid)
			if fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
				kept[pid] = fd
			} else {
				e.OPath = errName(err)
			}
			e.Exe, _ = os.Readlink(p)
			e.Direct = tryWrite(p, &w.WriteOpened)
		}
		// Keep retrying through the kept descriptors: ETXTBSY only lasts while the binary runs.
		for pid, fd := range kept {
			seen[pid].Reopen[tryWrite(fmt.Sprintf("/proc/self/fd/%d", fd), &w.WriteOpened)]++
		}
		time.Sleep(200 * time.Microsecond)
	}
	for _, fd := range kept {
		unix.Close(fd)
	}
	for _, e := range seen {
		w.Seen = append(w.Seen, *e)
	}
	sort.Slice(w.Seen, func(i, j int) bool { return w.Seen[i].Pid < w.Seen[j].Pid })
	return w
}

// tryWrite opens p for writing, closes it at once, and counts a success.
func tryWrite(p string, ok *int) string {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errName(err)
	}
	unix.Close(fd)
	*ok++
	return ""
}

func pids() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}
