package runc

import (
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestScratchTmpfs (issue 14): the floor's /tmp, /run and /var/tmp are directories of one tmpfs
// superblock (one device number), each with its own root mode, and none can hold more than the
// floor's 64 MiB, together not either: /run filled, /tmp and /var/tmp are full too.
func TestScratchTmpfs(t *testing.T) {
	c, leaks := newCLI(t)
	spec := testenv.Spec([]string{"/bin/sh", "-c", `stat -c '%n %d %a %u' /tmp /run /var/tmp
dd if=/dev/zero of=/run/fill bs=1M count=80 2>/dev/null; echo "run $? $(stat -c %s /run/fill)"
echo x > /tmp/more 2>/dev/null; echo "tmp $?"
echo x > /var/tmp/more 2>/dev/null; echo "var/tmp $?"
rm /run/fill; echo x > /tmp/more; echo "tmp after $?"`})
	// Room for the 64 MiB the tmpfs holds, charged to the container.
	limit := int64(512 << 20)
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	bundle := testenv.Bundle(t, spec)
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	out := c.ok("run", "--bundle", bundle, id)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 {
		t.Fatalf("output %q", out)
	}
	dev := ""
	for i, want := range [][2]string{{"/tmp", "1777"}, {"/run", "755"}, {"/var/tmp", "1777"}} {
		f := strings.Fields(lines[i])
		if len(f) != 4 || f[0] != want[0] || f[2] != want[1] || f[3] != "0" {
			t.Errorf("%q, want %s of mode %s owned by root", lines[i], want[0], want[1])
			continue
		}
		if dev == "" {
			dev = f[1]
		} else if f[1] != dev {
			t.Errorf("%s is device %s, /tmp %s: not one superblock", want[0], f[1], dev)
		}
	}
	f := strings.Fields(lines[3])
	if len(f) != 3 || f[1] == "0" {
		t.Errorf("80 MiB written to /run: %q, want a failure", lines[3])
	} else if n, err := strconv.Atoi(f[2]); err != nil || n > 64<<20 {
		t.Errorf("/run holds %s bytes, more than the floor's 64 MiB", f[2])
	}
	for _, l := range lines[4:6] {
		if strings.HasSuffix(l, " 0") {
			t.Errorf("%q: written though the scratch tmpfs is full", l)
		}
	}
	if lines[6] != "tmp after 0" {
		t.Errorf("%q: /tmp not writable once /run is emptied", lines[6])
	}
}
