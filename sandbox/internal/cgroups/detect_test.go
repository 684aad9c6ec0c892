package cgroups

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

func TestChoose(t *testing.T) {
	v1Mounts := func() []*mountinfo.Info {
		var out []*mountinfo.Info
		for _, c := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"} {
			out = append(out, &mountinfo.Info{FSType: "cgroup", Mountpoint: "/sys/fs/cgroup/" + c, VFSOptions: "rw," + c})
		}
		return append(out, &mountinfo.Info{FSType: "cgroup", Mountpoint: "/sys/fs/cgroup/systemd", VFSOptions: "rw,name=systemd"})
	}
	unified := &mountinfo.Info{FSType: "cgroup2", Mountpoint: "/sys/fs/cgroup/unified"}
	pure := &mountinfo.Info{FSType: "cgroup2", Mountpoint: "/sys/fs/cgroup"}
	controllers := func(c string) func(string) ([]byte, error) {
		return func(string) ([]byte, error) { return []byte(c), nil }
	}
	for _, tc := range []struct {
		name   string
		mounts []*mountinfo.Info
		ctrls  string
		wantV2 string // "" means v1 (or error when wantErr)
		err    bool
	}{
		{"this machine: hybrid, v2 has only hugetlb", append(v1Mounts(), unified), "hugetlb", "", false},
		{"hybrid with all controllers on v2", append(v1Mounts(), unified), "cpuset cpu io memory pids", "/sys/fs/cgroup/unified", false},
		{"pure v2", []*mountinfo.Info{pure}, "cpuset cpu io memory hugetlb pids rdma misc", "/sys/fs/cgroup", false},
		{"pure v2 without io still usable", []*mountinfo.Info{pure}, "cpu memory pids", "/sys/fs/cgroup", false},
		{"pure v2 without pids", []*mountinfo.Info{pure}, "cpu memory io", "", true},
		{"no cgroups", nil, "", "", true},
		{"v1 missing freezer", v1Mounts()[1:], "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := choose(tc.mounts, controllers(tc.ctrls))
			if tc.err {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("choose() = %+v, %v; want ErrUnsupported", h, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.v2 != tc.wantV2 {
				t.Errorf("v2 = %q, want %q", h.v2, tc.wantV2)
			}
			if tc.wantV2 == "" && (h.v1["memory"] != "/sys/fs/cgroup/memory" || h.v1["name=systemd"] != "" || len(h.v1) != 8) {
				t.Errorf("v1 = %v", h.v1)
			}
			// Issue 8 §6: on a hybrid host the container is also placed in the unified and
			// name=systemd hierarchies, so detect must name them.
			if tc.wantV2 == "" && (h.named["name=systemd"] != "/sys/fs/cgroup/systemd" || h.unified != "/sys/fs/cgroup/unified") {
				t.Errorf("named = %v, unified = %q", h.named, h.unified)
			}
		})
	}
}

func TestNewOnThisHost(t *testing.T) {
	if _, err := New("../escape"); err == nil {
		t.Error(`New("../escape") succeeded`)
	}
	if _, err := New("/abs"); err == nil {
		t.Error(`New("/abs") succeeded`)
	}
	m, err := New("bulwark/x")
	if err != nil {
		t.Fatal(err)
	}
	// New only computes paths; nothing is created until Create.
	for _, p := range m.Paths() {
		if !strings.HasSuffix(p, "/bulwark/x") {
			t.Errorf("path %s does not end in /bulwark/x", p)
		}
		if _, err := os.Stat(p); err == nil {
			t.Logf("note: %s exists (left by another run?)", p)
		}
	}
}
