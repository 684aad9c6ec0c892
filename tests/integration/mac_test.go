package integration

import (
	"os"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// TestMACLayer: every container runs under a MAC layer. Landlock is asserted wherever the kernel
// has it (TestLandlock*, TestFloorFromInside); SELinux and AppArmor are asserted up to what this
// kernel offers: a label when the LSM is active, else a skip naming what is missing.
func TestMACLayer(t *testing.T) {
	e := testenv.NewEnv(t, "tenant-mac")
	r1, _ := e.Run(testenv.Spec(probe("status", "landlock")))
	r2, _ := e.Run(testenv.Spec(probe("status")))
	if r1.Landlock.ABI < 1 && strings.HasPrefix(r1.Status.Label, "error") {
		t.Fatalf("no MAC layer confines the container: Landlock %+v, label %q", r1.Landlock, r1.Status.Label)
	}
	t.Run("selinux", func(t *testing.T) {
		if !fileHas("/sys/fs/selinux/enforce", "1") {
			t.Skip("SELinux is not enabled on this kernel: the label store is unit-tested in sandbox/internal/mac; enforcement untestable here")
		}
		// A unique MCS category pair per container: the two labels differ.
		if !strings.Contains(r1.Status.Label, ":s0:c") || r1.Status.Label == r2.Status.Label {
			t.Errorf("SELinux labels %q and %q: want distinct MCS pairs", r1.Status.Label, r2.Status.Label)
		}
	})
	t.Run("apparmor", func(t *testing.T) {
		if !fileHas("/sys/module/apparmor/parameters/enabled", "Y") {
			t.Skip("AppArmor is absent on this kernel: profile generation is unit-tested in profiles/ and sandbox/internal/mac; enforcement untestable here")
		}
		if !strings.Contains(r1.Status.Label, "(enforce)") {
			t.Errorf("AppArmor profile %q is not enforced", r1.Status.Label)
		}
	})
}

func fileHas(p, want string) bool {
	b, err := os.ReadFile(p)
	return err == nil && strings.TrimSpace(string(b)) == want
}
