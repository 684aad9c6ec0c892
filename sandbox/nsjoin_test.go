package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A namespace path is opened once and checked to be a namespace of the asked type; a path that
// is not one is refused with the reason (the floor lists it with the rest).
func TestOpenNamespace(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ        specs.LinuxNamespaceType
		path, want string
	}{
		{specs.NetworkNamespace, "proc/self/ns/net", "not absolute"},
		{specs.NetworkNamespace, plain, "not a namespace file"},
		{specs.IPCNamespace, "/proc/self/ns/net", "another type"},
	} {
		if s, err := openNamespace(tc.typ, tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
			if s != nil {
				s.close()
			}
			t.Errorf("%s %s: %v, want %q", tc.typ, tc.path, err, tc.want)
		}
	}
	s, err := openNamespace(specs.NetworkNamespace, "/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if s.location != "" {
		t.Errorf("a /proc link got a location %q: it names a process, not a place", s.location)
	}
}

// The floor refuses the runtime's own (the host's) namespaces whatever the path, and every path
// it was not given resolved.
func TestFloorRefusesHostNamespaces(t *testing.T) {
	r := floorRuntime(t)
	s := floorSpec()
	s.Linux.Namespaces[1].Path = "/proc/self/ns/net"
	if res, err := r.Floor(s); err != nil || res.Err() == nil || !strings.Contains(res.Err().Error(), "resolved first") {
		t.Errorf("unresolved: %v %v", res, err)
	}
	spec, srcs, err := ResolveBinds(s, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srcs.Close()
	res, err := r.FloorResolved(spec, srcs)
	if err != nil || res.Err() == nil || !strings.Contains(res.Err().Error(), "it is the host's") || len(res.Joins) != 0 {
		t.Errorf("host's network namespace: %+v, %v", res, err)
	}
}
