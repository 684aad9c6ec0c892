package sandbox

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	cases := []struct {
		opts  []string
		flags uintptr
		data  string
	}{
		{[]string{"nosuid", "nodev", "noexec", "mode=1777", "size=65536k"}, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=1777,size=65536k"},
		{[]string{"ro", "rw"}, 0, ""},
		{[]string{"rbind", "ro", "rprivate"}, unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY, ""},
		{[]string{"newinstance", "ptmxmode=0666"}, 0, "newinstance,ptmxmode=0666"},
		{[]string{"nosuid", "suid"}, 0, ""},
	}
	for _, c := range cases {
		f, d := parseOptions(c.opts)
		if f != c.flags || d != c.data {
			t.Errorf("%v: flags %#x data %q, want %#x %q", c.opts, f, d, c.flags, c.data)
		}
	}
}

func TestProcessPlan(t *testing.T) {
	r := floorRuntime(t)
	s := floorSpec()
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}
	s.Mounts = []specs.Mount{{Destination: "/data", Type: "tmpfs", Options: []string{"ro"}}}
	eff, _, err := floored(r, s)
	if err != nil {
		t.Fatal(err)
	}
	p, err := processPlanFor(eff.Process, eff.Mounts, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Caps != 1 { // CAP_CHOWN is 0
		t.Errorf("caps %#x", p.Caps)
	}
	want := []string{"/dev/shm", "/tmp", "/run", "/var/tmp"}
	if !sameSet(p.Landlock.Writable, want) {
		t.Errorf("writable %v, want %v (read-only tmpfs and /dev excluded)", p.Landlock.Writable, want)
	}
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
