package engine

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"bulwark.dev/bulwark/profiles"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestRunFlags: the docker-like flags reach the workload.
func TestRunFlags(t *testing.T) {
	f := newFixture(t)
	id := f.name(t, "flags")
	cmd := exec.Command(clitest.Bin, "--root", f.root, "run", "--rm", "-i", "--name", id, "-e", "FOO=bar", "-u", "nobody",
		"--hostname", "box", "--ulimit", "nofile=100:200", "--pids-limit", "20", "--cpus", "0.5", "-m", "32m",
		"--read-only", "--network", "none", "busybox:1",
		"sh", "-c", `id -u; id -g; hostname; ulimit -n; echo $FOO; cat`)
	cmd.Stdin = strings.NewReader("from stdin\n")
	out, err := cmd.Output()
	if want := "65534\n65534\nbox\n100\nbar\nfrom stdin\n"; err != nil || string(out) != want {
		t.Errorf("output %q (%v), want %q", out, err, want)
	}
	var plan struct {
		Spec struct {
			Linux struct {
				Resources struct {
					Memory struct{ Limit int64 } `json:"memory"`
					Pids   struct{ Limit int64 } `json:"pids"`
					CPU    struct {
						Quota  int64  `json:"quota"`
						Period uint64 `json:"period"`
					} `json:"cpu"`
				} `json:"resources"`
			} `json:"linux"`
		} `json:"effectiveSpec"`
	}
	dry := clitest.Must(t, f.root, "run", "--dry-run", "--pids-limit", "20", "--cpus", "0.5", "-m", "32m", "busybox:1", "true")
	if err := json.Unmarshal([]byte(dry), &plan); err != nil {
		t.Fatal(err)
	}
	r := plan.Spec.Linux.Resources
	if r.Memory.Limit != 32<<20 || r.Pids.Limit != 20 || r.CPU.Quota != 50000 || r.CPU.Period != 100000 {
		t.Errorf("resources %+v", r)
	}
	for _, bad := range [][]string{{"--network", "host"}, {"--security-opt", "no-new-privileges=false"}, {"--security-opt", "apparmor=unconfined"},
		{"--name", "../escape"}, {"--name", ".hidden"}, {"--read-only=false"}, {"-v", "/tmp:/x:rx"}} {
		r := clitest.Run(t, f.root, append(append([]string{"run", "--rm"}, bad...), "busybox:1", "true")...)
		if r.Code != 125 {
			t.Errorf("%v: exit %d, want 125", bad, r.Code)
		}
	}
	if _, err := os.Stat(filepath.Join(f.root, "escape")); err == nil {
		t.Error("--name ../escape created a directory outside engine/")
	}
	f.assertNothingLeft(t)
}

// TestSeccompProfileStacks: a profile given with --security-opt seccomp=FILE is loaded on top of
// the floor's: here the default allowlist without mkdir, so mkdir fails in the container.
func TestSeccompProfileStacks(t *testing.T) {
	f := newFixture(t)
	var p map[string]any
	dec := json.NewDecoder(bytes.NewReader(profiles.DefaultSeccompJSON()))
	dec.UseNumber() // 64-bit argument masks must survive the round trip
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	for _, rule := range p["syscalls"].([]any) {
		r := rule.(map[string]any)
		var names []any
		for _, n := range r["names"].([]any) {
			if n != "mkdir" && n != "mkdirat" {
				names = append(names, n)
			}
		}
		r["names"] = names
	}
	b, _ := json.Marshal(p)
	file := filepath.Join(f.dir, "no-mkdir.json")
	os.WriteFile(file, b, 0o644)
	id := f.name(t, "sc")
	r := clitest.Run(t, f.root, "run", "--rm", "--name", id, "--security-opt", "seccomp="+file, "busybox:1",
		"sh", "-c", "mkdir /tmp/d && echo made || echo refused")
	if r.Code != 0 || r.Stdout != "refused\n" {
		t.Errorf("exit %d stdout %q stderr %s", r.Code, r.Stdout, r.Stderr)
	}
	recs := f.records(t, id)
	if d := find(recs, "policy", "decision"); attr(d, "result") != "allow" {
		t.Errorf("decision %v", d)
	}
	if out := clitest.Must(t, f.root, "run", "--rm", "busybox:1", "sh", "-c", "mkdir /tmp/d && echo made"); out != "made\n" {
		t.Errorf("without the profile: %q", out)
	}
	if !slices.Contains(actions(recs), "container.create") {
		t.Errorf("story %v", actions(recs))
	}
	f.assertNothingLeft(t)
}

// TestPolicyCannotLowerTheFloor: an operator policy that allows everything still cannot get a
// forbidden capability or an unconfined seccomp past the sandbox floor.
func TestPolicyCannotLowerTheFloor(t *testing.T) {
	f := newFixture(t)
	pol := filepath.Join(f.dir, "allow-all")
	os.MkdirAll(pol, 0o755)
	os.WriteFile(filepath.Join(pol, "allow.rego"), []byte("package bulwark.run\n\ndecision := {\"allow\": true, \"reasons\": [], \"constraints\": {}}\n"), 0o644)
	id := f.name(t, "floor")
	r := clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--name", id, "--cap-add", "SYS_ADMIN", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "refused by the sandbox floor") {
		t.Errorf("SYS_ADMIN under an allow-all policy: exit %d, %s", r.Code, r.Stderr)
	}
	recs := f.records(t, id)
	if d := find(recs, "policy", "decision"); attr(d, "result") != "allow" || find(recs, "container", "floor.refused") == nil {
		t.Errorf("story %v", actions(recs))
	}
	r = clitest.Run(t, f.root, "run", "--rm", "--policy-dir", pol, "--privileged", "busybox:1", "true")
	if r.Code != 125 || !strings.Contains(r.Stderr, "privileged sandboxes do not exist") {
		t.Errorf("--privileged under an allow-all policy: exit %d, %s", r.Code, r.Stderr)
	}
	// seccomp=unconfined is allowed by this policy, but the floor's allowlist still loads.
	out := clitest.Must(t, f.root, "run", "--rm", "--policy-dir", pol, "--security-opt", "seccomp=unconfined", "busybox:1",
		"sh", "-c", "grep Seccomp: /proc/self/status")
	if !strings.Contains(out, "2") {
		t.Errorf("seccomp mode under an allow-all policy: %q", out)
	}
	f.assertNothingLeft(t)
}
