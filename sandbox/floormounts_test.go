package sandbox

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestScratchTmpfs: the floor's own /tmp, /run and /var/tmp are its scratch mounts (one
// superblock in the child), and floored again they still are; a spec's own tmpfs at one of them,
// or any other tmpfs, is not.
func TestScratchTmpfs(t *testing.T) {
	r := floorRuntime(t)
	in := floorSpec()
	in.Mounts = []specs.Mount{{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}}
	eff, _, err := floored(r, in)
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := floored(r, eff)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []*specs.Spec{eff, again} {
		scratch := map[string]bool{}
		for _, m := range spec.Mounts {
			if scratchTmpfs(m) {
				scratch[m.Destination] = true
			}
		}
		if !scratch["/tmp"] || !scratch["/var/tmp"] || len(scratch) != 2 {
			t.Errorf("scratch mounts %v, want /tmp and /var/tmp (the spec's /run is its own)", scratch)
		}
	}
}
