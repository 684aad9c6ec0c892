package bench

import (
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// runtimeResults runs every runtime control on e and returns status by control id.
func runtimeResults(t *testing.T, e *Env) map[string]Result {
	t.Helper()
	cat, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Result{}
	for i := range cat.Controls {
		if c := &cat.Controls[i]; c.Section == "runtime" {
			out[c.ID] = e.evaluate(c)
		}
	}
	return out
}

// failing lists the controls of rs that failed.
func failing(rs map[string]Result) []string {
	var out []string
	for id, r := range rs {
		if r.Status == Fail {
			out = append(out, id)
		}
	}
	return sortedCopy(out)
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestRuntimeBulwarkLikePasses(t *testing.T) {
	rs := runtimeResults(t, testEnv(t, bulwarkLike(100)))
	if f := failing(rs); len(f) > 0 {
		for _, id := range f {
			t.Errorf("%s failed: %s %+v", id, rs[id].Actual, rs[id].Findings)
		}
	}
	for _, id := range []string{"BW-5.2", "BW-5.3", "BW-5.4", "BW-5.5", "BW-5.6", "BW-5.7", "BW-5.8", "BW-5.9", "BW-5.10", "BW-5.11", "BW-5.12", "BW-5.13", "BW-5.14", "BW-5.15"} {
		if rs[id].Status != Pass {
			t.Errorf("%s: %s, want PASS (%s)", id, rs[id].Status, rs[id].Actual)
		}
	}
}

// Each weakening fails exactly the control that checks it, and the healthy container beside it
// still passes that control.
func TestRuntimeWeakenedFailsExactly(t *testing.T) {
	cases := []struct {
		name   string
		weaken func(*fakeCtr)
		want   []string
	}{
		{"CAP_SYS_ADMIN and no user namespace (runc as root)", func(c *fakeCtr) {
			c.capEff, c.capBnd = "00000000002004fb", "00000000002004fb"
			c.uidMap = "0 0 4294967295\n"
			c.sharedNS = []string{"user"}
		}, []string{"BW-5.2", "BW-5.4", "BW-5.5"}},
		{"identity map in an own user namespace", func(c *fakeCtr) { c.uidMap = "0 0 65536\n" }, []string{"BW-5.2"}},
		{"host network namespace", func(c *fakeCtr) { c.sharedNS = []string{"net"} }, []string{"BW-5.3"}},
		{"CAP_NET_RAW kept in the bounding set only", func(c *fakeCtr) { c.capBnd = "00000000000024fb" }, []string{"BW-5.5"}},
		{"no_new_privs off", func(c *fakeCtr) { c.nnp = 0 }, []string{"BW-5.6"}},
		{"seccomp off", func(c *fakeCtr) { c.seccomp = 0 }, []string{"BW-5.7"}},
		{"writable root", func(c *fakeCtr) { c.rootOpts = "rw,relatime" }, []string{"BW-5.8"}},
		{"a masked path visible", func(c *fakeCtr) { c.unmask = "/proc/kcore" }, []string{"BW-5.9"}},
		{"a masked directory covered by a directory that is not empty", func(c *fakeCtr) { c.maskedDirFull = true }, []string{"BW-5.9"}},
		{"shared propagation", func(c *fakeCtr) {
			c.extraMounts = "300 76 0:60 / /mnt rw shared:5 - tmpfs tmpfs rw\n"
		}, []string{"BW-5.11"}},
		{"docker socket mounted", func(c *fakeCtr) {
			c.extraMounts = "301 76 0:61 /run/docker.sock /var/run/docker.sock rw - tmpfs tmpfs rw\n"
		}, []string{"BW-5.12"}},
		{"no memory limit (v1 page-counter maximum)", func(c *fakeCtr) { c.memLimit = "9223372036854771712" }, []string{"BW-5.13"}},
		{"no pids limit", func(c *fakeCtr) { c.pidsMax = "max" }, []string{"BW-5.14"}},
		{"nofile above the floor's ceiling", func(c *fakeCtr) { c.nofileHard = "unlimited" }, []string{"BW-5.15"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := bulwarkLike(200)
			tc.weaken(&bad)
			rs := runtimeResults(t, testEnv(t, bulwarkLike(100), bad))
			if got := failing(rs); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				for _, id := range got {
					t.Logf("%s: %+v", id, rs[id].Findings)
				}
				t.Fatalf("failing %v, want %v", got, tc.want)
			}
			for _, id := range tc.want {
				for _, f := range rs[id].Findings {
					want := map[string]Status{"bulwark:c100": Pass, "bulwark:c200": Fail}[f.Target]
					if f.Status != want {
						t.Errorf("%s %s: %s (%s), want %s", id, f.Target, f.Status, f.Actual, want)
					}
				}
			}
		})
	}
}

func TestRuntimeNoContainersSkips(t *testing.T) {
	rs := runtimeResults(t, testEnv(t))
	if rs["BW-5.4"].Status != Skip || rs["BW-5.1"].Status != Pass {
		t.Fatalf("BW-5.4 %s, BW-5.1 %s", rs["BW-5.4"].Status, rs["BW-5.1"].Status)
	}
}

// A container source that cannot be listed fails, never passes as "no containers".
func TestRuntimeDiscoveryErrorFails(t *testing.T) {
	e := testEnv(t)
	e.discoveryErrs = []error{fmt.Errorf("docker: %w", os.ErrNotExist)}
	if r := runtimeResults(t, e)["BW-5.1"]; r.Status != Fail {
		t.Fatalf("BW-5.1 %s: %s", r.Status, r.Actual)
	}
	// Permission denied to a non-root scan (the state root is root's) is a skip that says so;
	// to root it is a failure.
	e.discoveryErrs = []error{fmt.Errorf("bulwark: %w", fs.ErrPermission)}
	e.Euid = 1000
	if r := runtimeResults(t, e)["BW-5.1"]; r.Status != Skip || !strings.Contains(r.Actual, "needs root") {
		t.Fatalf("BW-5.1 as uid 1000: %s %s", r.Status, r.Actual)
	}
	e.Euid = 0
	if r := runtimeResults(t, e)["BW-5.1"]; r.Status != Fail {
		t.Fatalf("BW-5.1 as root: %s %s", r.Status, r.Actual)
	}
}

// A non-root scan skips, and says so, the controls that read what only root may (namespace
// links, a container's root), and runs those whose /proc files anyone may read (status).
func TestRuntimeNeedsRootSkipped(t *testing.T) {
	e := testEnv(t, bulwarkLike(100))
	e.Euid = 1000
	rs := runtimeResults(t, e)
	if r := rs["BW-5.2"]; r.Status != Skip || !strings.Contains(r.Actual, "needs root") {
		t.Fatalf("BW-5.2 as uid 1000: %s %q", r.Status, r.Actual)
	}
	if r := rs["BW-5.4"]; r.Status != Pass {
		t.Fatalf("BW-5.4 as uid 1000: %s %q", r.Status, r.Actual)
	}
}

// One container that cannot be read keeps a control from passing for all.
func TestRuntimeSkippedContainerIsNotAPass(t *testing.T) {
	e := testEnv(t)
	e.Containers = []Container{{Name: "bulwark:a", Pid: 1}, {Name: "bulwark:b", Pid: 2}}
	probe := func(status Status) containerProbe {
		return func(_ *Env, _ *Control, ct *Container) Outcome {
			if ct.Pid == 2 {
				return Outcome{Status: status}
			}
			return pass("ok")
		}
	}
	for status, want := range map[Status]Status{Pass: Pass, Skip: Info, Info: Info, Fail: Fail} {
		if o, _ := e.eachContainer(&Control{}, probe(status)); o.Status != want {
			t.Errorf("one container %s, one PASS: %s, want %s", status, o.Status, want)
		}
	}
}
