package onearena

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestOneArena: the threads the Go runtime started have no glibc arena of their own, which
// glibc's default (an arena for each thread, up to eight per CPU) would give them. Each locked
// goroutine below gets a thread of its own, ended when the goroutine returns still locked.
func TestOneArena(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			done := make(chan struct{})
			go func() { close(done) }()
			<-done
		}()
	}
	wg.Wait()
	if n := arenas(t); n != 0 {
		t.Errorf("%d glibc arenas besides the main one", n)
	}
}

// arenas counts glibc's thread arenas in /proc/self/maps: each is a 64 MB-aligned 64 MB region,
// mapped as its used part (read-write) followed by the rest (no access), in the mmap area, far
// above the Go heap's addresses.
func arenas(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	type region struct {
		lo, hi uint64
		perms  string
		anon   bool
	}
	var rs []region
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			t.Fatalf("maps line %q", s.Text())
		}
		l, err1 := strconv.ParseUint(lo, 16, 64)
		h, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("maps line %q", s.Text())
		}
		rs = append(rs, region{l, h, fields[1], len(fields) < 6})
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; i+1 < len(rs); i++ {
		a, b := rs[i], rs[i+1]
		if a.anon && b.anon && a.perms == "rw-p" && b.perms == "---p" && a.hi == b.lo &&
			a.lo%size == 0 && b.hi-a.lo == size && a.lo >= 0x700000000000 {
			n++
		}
	}
	return n
}
