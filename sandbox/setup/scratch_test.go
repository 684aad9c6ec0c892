package setup

import "testing"

func TestScratchRun(t *testing.T) {
	ms := []MountPlan{{Scratch: true}, {Scratch: true}, {}, {Scratch: true}}
	if n := scratchRun(ms); n != 2 {
		t.Errorf("run of %d, want 2", n)
	}
	if n := scratchRun(ms[3:]); n != 1 {
		t.Errorf("run of %d, want 1", n)
	}
}

func TestScratchData(t *testing.T) {
	for data, want := range map[string]uint32{"mode=755,size=65536k": 0o755, "size=65536k,mode=1777": 0o1777, "size=1k": scratchMode} {
		if got, err := dataMode(data); err != nil || got != want {
			t.Errorf("dataMode(%q) = %o, %v, want %o", data, got, err, want)
		}
	}
	for _, bad := range []string{"mode=9", "mode=17777", "mode="} {
		if _, err := dataMode(bad); err == nil {
			t.Errorf("dataMode(%q) accepted", bad)
		}
	}
	if a, b := dataWithoutMode("nr_inodes=5,mode=755,size=1k"), dataWithoutMode("mode=1777,nr_inodes=5,size=1k"); a != b || a != "nr_inodes=5,size=1k" {
		t.Errorf("data without mode %q and %q", a, b)
	}
}
