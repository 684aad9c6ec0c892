package runc

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/tests/internal/testenv"
)

// OCI hooks: bulwark-runc runs a spec's prestart, createRuntime, poststart and poststop hooks on
// the host only when the operator's policy data lists the hook's file by path and sha256 digest;
// any other hook refuses the create with the reason; every run is audited.

// hookProgram copies the host's static busybox to a file of the test's own (so its path is the
// test's to allowlist) and returns its path and digest.
func hookProgram(t *testing.T) (string, string) {
	t.Helper()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox on the host: %v", err)
	}
	p := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return p, hex.EncodeToString(sum[:])
}

// hookPolicy writes operator data with the shipped defaults, allowlisting path with digest for
// tenant "default".
func hookPolicy(t *testing.T, path, digest string) string {
	t.Helper()
	data := fmt.Sprintf(`{"bulwark": {
  "defaults": {"grantable_capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"],
               "max_memory": 8589934592, "max_pids": 4096, "bind_sources": [], "writable_bind_sources": []},
  "tenants": {"default": {"hook_allowlist": [{"path": %q, "sha256": %q}]}}}}`, path, digest)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// shellHook is a hook running `sh -c script` through the busybox at path.
func shellHook(path, script string) specs.Hook {
	return specs.Hook{Path: path, Args: []string{"busybox", "sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}}
}

// readState reads the state JSON a hook saved from its stdin.
func readState(t *testing.T, file string) specs.State {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the hook did not run: %v", err)
	}
	var st specs.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("hook stdin is not the state JSON: %v\n%s", err, b)
	}
	return st
}

func TestHooksAllowlistedRun(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	prog, digest := hookProgram(t)
	pol := hookPolicy(t, prog, digest)
	out := t.TempDir()
	spec := sleeper()
	spec.Hooks = &specs.Hooks{
		Prestart:      []specs.Hook{shellHook(prog, "cat > "+out+"/prestart.json")},
		CreateRuntime: []specs.Hook{shellHook(prog, "cat > "+out+"/createRuntime.json")},
		Poststart:     []specs.Hook{shellHook(prog, "cat > "+out+"/poststart.json")},
		Poststop:      []specs.Hook{shellHook(prog, "cat > "+out+"/poststop.json")},
	}
	bundle := testenv.Bundle(t, spec)
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	c.ok("--state-root", sr, "--policy", pol, "create", "--bundle", bundle, id)
	pid := c.state(id).Pid
	for _, phase := range []string{"prestart", "createRuntime"} {
		st := readState(t, filepath.Join(out, phase+".json"))
		if st.ID != id || st.Pid != pid || st.Bundle != bundle || st.Status != specs.StateCreating {
			t.Errorf("%s hook saw %+v, want id %s pid %d bundle %s status creating", phase, st, id, pid, bundle)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "poststart.json")); err == nil {
		t.Error("poststart ran at create")
	}
	c.ok("--state-root", sr, "--policy", pol, "start", id)
	if st := readState(t, filepath.Join(out, "poststart.json")); st.ID != id || st.Status != specs.StateRunning {
		t.Errorf("poststart hook saw %+v", st)
	}
	c.ok("--state-root", sr, "--policy", pol, "delete", "--force", id)
	if st := readState(t, filepath.Join(out, "poststop.json")); st.ID != id || st.Status != specs.StateStopped {
		t.Errorf("poststop hook saw %+v", st)
	}
	var phases []string
	for _, r := range auditRecords(t, sr, func(r auditRecord) bool { return r.Action == "hook" && r.ContainerID == id }) {
		if r.Attrs["result"] != "ok" || r.Attrs["sha256"] != digest || r.Attrs["resolved"] != prog {
			t.Errorf("hook audit record %+v", r.Attrs)
		}
		phases = append(phases, r.Attrs["phase"])
	}
	if got := strings.Join(phases, " "); got != "prestart createRuntime poststart poststop" {
		t.Errorf("audited hook runs %q", got)
	}
	verifyAudit(t, sr)
	leaks.AssertNone(t)
}

func TestHooksRefused(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	prog, digest := hookProgram(t)
	marker := filepath.Join(t.TempDir(), "ran")
	hook := shellHook(prog, "touch "+marker)
	other, _ := hookProgram(t) // the same content at a path nobody listed
	cases := []struct {
		name   string
		policy string
		hooks  specs.Hooks
		want   []string
	}{
		{"default policy lists no hook", "", specs.Hooks{Prestart: []specs.Hook{hook}},
			[]string{"HOOK_NOT_ALLOWED", "prestart hook " + prog, "hook_allowlist"}},
		{"a path nobody listed", hookPolicy(t, prog, digest), specs.Hooks{Poststop: []specs.Hook{shellHook(other, "touch "+marker)}},
			[]string{"HOOK_NOT_ALLOWED", "poststop hook " + other}},
		{"the listed path with another digest", hookPolicy(t, prog, strings.Repeat("0", 64)), specs.Hooks{CreateRuntime: []specs.Hook{hook}},
			[]string{"HOOK_DIGEST_MISMATCH", "has sha256 " + digest}},
		{"a hook in the container's namespaces", hookPolicy(t, prog, digest), specs.Hooks{CreateContainer: []specs.Hook{hook}},
			[]string{"createContainer and startContainer hooks are refused"}},
		{"a relative path", hookPolicy(t, prog, digest), specs.Hooks{Prestart: []specs.Hook{{Path: "hook"}}},
			[]string{"hooks.prestart[0]", "is not absolute"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := sleeper()
			spec.Hooks = &tc.hooks
			bundle := testenv.Bundle(t, spec)
			leaks.Dir(bundle)
			id := leaks.Track(testenv.UniqueID(t))
			args := []string{"--state-root", sr}
			if tc.policy != "" {
				args = append(args, "--policy", tc.policy)
			}
			r := c.run(append(args, "create", "--bundle", bundle, id)...)
			if r.code != 1 {
				t.Fatalf("create exit %d, want 1 (refused)\n%s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("refusal does not say %q:\n%s", w, r.stderr)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("a refused hook ran")
			}
			refused := auditRecords(t, sr, func(r auditRecord) bool {
				return r.ContainerID == id && (r.Action == "decision" && r.Attrs["result"] == "deny" || r.Action == "refused")
			})
			if len(refused) == 0 {
				t.Error("no audit record of the refusal")
			}
			assertNothingCreated(t, c, leaks)
		})
	}
	verifyAudit(t, sr)
}

// TestHookFailureDeletesContainer: a failing prestart hook fails the create with the hook's own
// output, the container is deleted and its poststop hook runs (the runtime spec's lifecycle).
func TestHookFailureDeletesContainer(t *testing.T) {
	c, leaks, sr := policyCLI(t)
	prog, digest := hookProgram(t)
	pol := hookPolicy(t, prog, digest)
	out := t.TempDir()
	spec := sleeper()
	spec.Hooks = &specs.Hooks{
		Prestart: []specs.Hook{shellHook(prog, "echo no network for you >&2; exit 3")},
		Poststop: []specs.Hook{shellHook(prog, "cat > "+out+"/poststop.json")},
	}
	bundle := testenv.Bundle(t, spec)
	leaks.Dir(bundle)
	id := leaks.Track(testenv.UniqueID(t))
	r := c.run("--state-root", sr, "--policy", pol, "create", "--bundle", bundle, id)
	if r.code != 1 || !strings.Contains(r.stderr, "exit status 3") || !strings.Contains(r.stderr, "no network for you") {
		t.Fatalf("create with a failing prestart hook: %+v", r)
	}
	if st := readState(t, filepath.Join(out, "poststop.json")); st.ID != id {
		t.Errorf("poststop hook saw %+v", st)
	}
	failed := auditRecords(t, sr, func(r auditRecord) bool {
		return r.Action == "hook" && r.ContainerID == id && r.Attrs["result"] == "failed"
	})
	if len(failed) != 1 || failed[0].Attrs["phase"] != "prestart" {
		t.Errorf("audited failed hooks: %+v", failed)
	}
	assertNothingCreated(t, c, leaks)
}
