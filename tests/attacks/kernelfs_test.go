package attacks

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestSecondKernelFSRefused (issue 8 §3): the masked and read-only paths are paths under /proc
// and /sys, so a second proc, sysfs or cgroup instance elsewhere showed what they hide
// (/mnt/interrupts, /mnt/firmware). The floor refuses such a mount; if a container is created
// anyway, the probe reports from inside what got mounted there.
func TestSecondKernelFSRefused(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-attacks")
	for _, typ := range []string{"proc", "sysfs", "cgroup", "cgroup2"} {
		t.Run(typ, func(t *testing.T) {
			e := e.For(t)
			spec := testenv.RuncSpec(testenv.ProbeArgs("mounts"), testenv.WithMount(specs.Mount{Destination: "/mnt", Type: typ, Source: typ}))
			c, err := e.Create(nil, spec)
			if err != nil {
				if !errors.Is(err, sandbox.ErrFloor) {
					t.Fatalf("create failed, but not as a floor refusal: %v", err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err := c.Start(); err != nil {
				t.Fatalf("start: %v%s", err, c.ErrText())
			}
			c.WaitExit()
			for _, m := range c.Report().Mounts {
				if m.Mountpoint == "/mnt" {
					t.Errorf("ESCAPE: a second %s instance is mounted at /mnt, outside the masks: %+v", typ, m)
				}
			}
			t.Errorf("a %s mount at /mnt was not refused", typ)
		})
	}
	// The callers' own specs (Docker, containerd, runc spec) mount each at its home: still fine.
	r, _ := e.Run(testenv.RuncSpec(testenv.ProbeArgs("masked")))
	for p, m := range r.Masked {
		if m.Bytes > 0 || m.Entries > 0 {
			t.Errorf("%s is not masked in a runc-style spec: %+v", p, m)
		}
	}
}
