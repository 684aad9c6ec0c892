package runc

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// devScript reports /dev's mounts, uses its devices and tries to make, remove and add nodes.
const devScript = `grep -cE ' /dev/(null|zero|full|random|urandom|tty) ' /proc/self/mountinfo | sed 's/^/node mounts /'
stat -c '%n %t:%T %a %u' /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty
echo x > /dev/null && echo "null ok"
head -c 3 /dev/zero | od -An -tx1 | sed 's/^ */zero /'
mknod /dev/made c 1 3 2>/dev/null; echo "mknod $?"
mknod /tmp/made c 1 3 2>/dev/null; echo "mknod tmp $?"
rm -f /dev/null 2>/dev/null; test -c /dev/null; echo "null kept $?"
`

// TestRuntimeDev (issue 14): the runtime makes a container's /dev — a tmpfs of the host's user
// namespace with the minimal device nodes made in it — instead of six bind mounts of the host's
// nodes: no mount below /dev but devpts, shm and mqueue, the six devices as on the host (host
// root's: nobody inside), usable, and still no node can be made (in /dev or elsewhere) nor one
// removed. A /dev whose options the runtime does not make (uid= in the container's ids) is
// mounted by the setup child with bind-mounted nodes, as before, and looks the same inside.
func TestRuntimeDev(t *testing.T) {
	c, leaks := newCLI(t)
	for name, opts := range map[string][]string{
		"floor's":   nil, // no /dev in the spec: the floor's default
		"runtime's": {"nosuid", "strictatime", "mode=755", "size=65536k"},
		"child's":   {"nosuid", "strictatime", "mode=755", "size=65536k", "uid=0"},
	} {
		spec := testenv.Spec([]string{"/bin/sh", "-c", devScript})
		if opts != nil {
			spec.Mounts = []specs.Mount{{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: opts}}
		}
		bundle := testenv.Bundle(t, spec)
		leaks.Dir(bundle)
		id := leaks.Track(testenv.UniqueID(t))
		out := c.ok("run", "--bundle", bundle, id)
		want := []string{
			"/dev/null 1:3 666 65534", "/dev/zero 1:5 666 65534", "/dev/full 1:7 666 65534",
			"/dev/random 1:8 666 65534", "/dev/urandom 1:9 666 65534", "/dev/tty 5:0 666 65534",
			"null ok", "zero 00 00 00", "mknod 1", "mknod tmp 1", "null kept 0",
		}
		nodeMounts := "node mounts 0"
		if name == "child's" {
			nodeMounts = "node mounts 6"
		}
		want = append([]string{nodeMounts}, want...)
		if got := strings.TrimSpace(out); got != strings.Join(want, "\n") {
			t.Errorf("%s /dev:\n%s\nwant\n%s", name, got, strings.Join(want, "\n"))
		}
	}
}
