package mac

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"bulwark.dev/bulwark/sandbox/internal/mac/macexec"
	"github.com/opencontainers/selinux/go-selinux"
)

var levelRE = regexp.MustCompile(`^s0:c(\d+),c(\d+)$`)

func checkLevel(t *testing.T, l SELinuxLabels) string {
	t.Helper()
	m := levelRE.FindStringSubmatch(l.Level())
	if m == nil {
		t.Fatalf("labels %+v: level %q is not an MCS pair", l, l.Level())
	}
	var a, b int
	fmt.Sscan(m[1], &a)
	fmt.Sscan(m[2], &b)
	if a >= b || b >= mcsCategories {
		t.Fatalf("level %s: want c%d < c%d < c%d", l.Level(), a, b, mcsCategories)
	}
	mnt, err := selinux.NewContext(l.Mount)
	if err != nil || mnt["level"] != l.Level() {
		t.Fatalf("mount label %q does not carry the process level %s", l.Mount, l.Level())
	}
	return l.Level()
}

func TestLabelsUnique(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	// Several stores on one directory stand for several runtime processes (flock serializes them).
	var wg sync.WaitGroup
	got := make([]SELinuxLabels, n)
	errs := make([]error, n)
	for w := range 4 {
		s, err := OpenLabelStore(dir)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				got[i], errs[i] = s.Reserve(fmt.Sprintf("c%d", i), SELinuxLabels{})
			}
		})
	}
	wg.Wait()
	seen := map[string]string{}
	for i, l := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		lv := checkLevel(t, l)
		if other, dup := seen[lv]; dup {
			t.Fatalf("level %s given to c%d and %s", lv, i, other)
		}
		seen[lv] = fmt.Sprintf("c%d", i)
	}
	if !selinux.GetEnabled() {
		// Without SELinux the types come from container-selinux's defaults.
		if p, _ := selinux.NewContext(got[0].Process); p["type"] != "container_t" {
			t.Errorf("process label %q", got[0].Process)
		}
		if m, _ := selinux.NewContext(got[0].Mount); m["type"] != "container_file_t" || m["role"] != "object_r" {
			t.Errorf("mount label %q", got[0].Mount)
		}
	}
	s, _ := OpenLabelStore(dir)
	all, err := s.List()
	if err != nil || len(all) != n {
		t.Fatalf("List: %d entries, %v", len(all), err)
	}
}

func TestLabelsReserveRelease(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLabelStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Reserve("a", SELinuxLabels{})
	if err != nil {
		t.Fatal(err)
	}
	// Idempotent: a container asking again (e.g. runtime restarted) gets its own labels back, also
	// from another process.
	s2, _ := OpenLabelStore(dir)
	if again, err := s2.Reserve("a", SELinuxLabels{}); err != nil || again != a {
		t.Fatalf("second Reserve(a) = %+v, %v; want %+v", again, err, a)
	}
	// A spec asking for a level another live container holds is refused.
	want := SELinuxLabels{Process: a.Process, Mount: a.Mount}
	if _, err := s.Reserve("b", want); !errors.Is(err, selinux.ErrMCSAlreadyExists) {
		t.Fatalf("Reserve(b) with a's level = %v, want ErrMCSAlreadyExists", err)
	}
	// Released, the level is free again, and a spec may ask for it.
	if err := s.Release("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Release("a"); err != nil {
		t.Fatalf("second Release: %v (delete must be idempotent)", err)
	}
	b, err := s.Reserve("b", want)
	if err != nil {
		t.Fatal(err)
	}
	if b.Level() != a.Level() {
		t.Fatalf("released level %s not reusable: got %s", a.Level(), b.Level())
	}
	// A spec label's user/role/type are kept, the level drawn fresh when it has none.
	c, err := s.Reserve("c", SELinuxLabels{Process: "u:r:container_init_t:s0", Mount: "u:object_r:container_ro_file_t:s0"})
	if err != nil {
		t.Fatal(err)
	}
	checkLevel(t, c)
	if p, _ := selinux.NewContext(c.Process); p["type"] != "container_init_t" || p["user"] != "u" {
		t.Errorf("spec process label not kept: %q", c.Process)
	}
	// Unconfined types are below the floor.
	for _, l := range []SELinuxLabels{
		{Process: "system_u:system_r:spc_t:s0"},
		{Process: "unconfined_u:unconfined_r:unconfined_t:s0"},
		{Mount: "system_u:object_r:etc_t:s0"},
	} {
		if _, err := s.Reserve("f", l); err == nil {
			t.Errorf("Reserve accepted %+v", l)
		}
	}
	if _, err := s.Reserve("d", SELinuxLabels{Process: "nonsense"}); err == nil {
		t.Error("Reserve accepted a malformed label")
	}
	// Levels that would dominate other containers' pairs are refused.
	for _, lv := range []string{"s0-s0:c0.c1023", "s0:c0.c1023", "s0:c5,c5", "s0:c9,c3", "s0:c1,c2,c3", "s0:c1,c1024", "s1:c1,c2"} {
		if _, err := s.Reserve("e", SELinuxLabels{Process: "u:r:container_t:" + lv}); err == nil {
			t.Errorf("Reserve accepted level %s", lv)
		}
	}
}

func TestSELinuxAttributes(t *testing.T) {
	const mount = "system_u:object_r:container_file_t:s0:c1,c2"
	if got, want := macexec.SELinuxMountOptions("", mount), `context="`+mount+`"`; got != want {
		t.Errorf("mount options = %s, want %s", got, want)
	}
	if got, want := macexec.SELinuxMountOptions("mode=755,size=65536k", mount), `mode=755,size=65536k,context="`+mount+`"`; got != want {
		t.Errorf("mount options = %s, want %s", got, want)
	}
	if got := macexec.SELinuxMountOptions("mode=755", ""); got != "mode=755" {
		t.Errorf("no label changed the options: %s", got)
	}
	const proc = "system_u:system_r:container_t:s0:c1,c2"
	path, data := macexec.SELinuxExecAttr(proc)
	if path != "/proc/thread-self/attr/exec" || string(data) != proc {
		t.Errorf("exec attr = %s %q", path, data)
	}
}

// TestSELinuxEnforcement reserves labels, runs a child that applies the process label on exec, and
// reads the context the kernel reports for the exec'd program.
func TestSELinuxEnforcement(t *testing.T) {
	if !selinux.GetEnabled() {
		t.Skip("SELinux is not enabled on this host: labels are reserved but not applied")
	}
	s, err := OpenLabelStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Reserve("enforce", SELinuxLabels{})
	if err != nil {
		t.Fatal(err)
	}
	if out := runChild(t, "selinux:"+l.Process); strings.TrimRight(out, "\x00\n") != l.Process {
		t.Fatalf("exec'd program runs as %q, want %q", out, l.Process)
	}
}
