package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModeWithinIsABitMask(t *testing.T) {
	for _, tc := range []struct {
		perm, max uint32
		want      bool
	}{
		{0o644, 0o644, true},
		{0o600, 0o644, true},
		{0o400, 0o600, true},
		{0o622, 0o644, false}, // 622 < 644 as a number, but adds group and other write
		{0o640, 0o600, false},
		{0o660, 0o660, true},
		{0o666, 0o660, false},
		{0o711, 0o711, true},
		{0o755, 0o711, false},
		{0o4755, 0o755, false}, // setuid is beyond any plain permission mask
		{0o000, 0o000, true},
	} {
		if got := ModeWithin(tc.perm, tc.max); got != tc.want {
			t.Errorf("ModeWithin(%04o, %04o) = %v, want %v", tc.perm, tc.max, got, tc.want)
		}
	}
}

// fileControl is a files.mode control over root with the given rule.
func fileControl(t *testing.T, rule string) *Control {
	t.Helper()
	return &Control{ID: "BW-T.1", Probe: "files.mode", Params: json.RawMessage(rule)}
}

func TestFileModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the files belong to the test's uid; the rule wants uid 0")
	}
	e := testEnv(t)
	keys := filepath.Join(e.Root, "trust", "keys", "targets")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(keys, "a.key")
	bad := filepath.Join(keys, "b.key")
	for _, p := range []string{good, bad} {
		if err := os.WriteFile(p, []byte("k"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctl := fileControl(t, `{"paths":["trust/keys/*/*.key"],"maxMode":"0600","owner":0,"kind":"file"}`)
	if o := probeFileModes(e, ctl); o.Status != Pass {
		t.Fatalf("0600 keys: %s %s", o.Status, o.Actual)
	}
	if err := os.Chmod(bad, 0o622); err != nil {
		t.Fatal(err)
	}
	o := probeFileModes(e, ctl)
	if o.Status != Fail || len(o.Details) != 1 || !strings.Contains(o.Details[0], "b.key: mode 0622 exceeds 0600 by 0022") {
		t.Fatalf("0622 key: %s %s %v", o.Status, o.Actual, o.Details)
	}
	if err := os.Chmod(bad, 0o400); err != nil {
		t.Fatal(err)
	}
	if o := probeFileModes(e, ctl); o.Status != Pass {
		t.Fatalf("0400 key: %s %s %v", o.Status, o.Actual, o.Details)
	}
	// A symbolic link in place of a key fails: the check would be about another file.
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(good, bad); err != nil {
		t.Fatal(err)
	}
	if o := probeFileModes(e, ctl); o.Status != Fail || !strings.Contains(strings.Join(o.Details, ";"), "symbolic link") {
		t.Fatalf("symlinked key: %s %v", o.Status, o.Details)
	}
	if o := probeFileModes(e, fileControl(t, `{"paths":["nothing/*"],"maxMode":"0600","owner":0,"kind":"file"}`)); o.Status != Skip {
		t.Fatalf("no files: %s", o.Status)
	}
	// The catalog's params are strict: a misspelt key is an error, not an ignored check.
	if o := probeFileModes(e, fileControl(t, `{"path":["x"],"maxMode":"0600"}`)); o.Status != Fail {
		t.Fatalf("misspelt params: %s", o.Status)
	}
}

func TestPolicyLimits(t *testing.T) {
	e := testEnv(t)
	if o := probePolicyLimits(e, &Control{ID: "BW-2.6"}); o.Status != Pass {
		t.Fatalf("embedded policy: %s %s %v", o.Status, o.Actual, o.Details)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "data.json"), `{"bulwark":{"defaults":{"max_memory":1073741824,"max_pids":512},"tenants":{"loose":{"max_pids":0}}}}`)
	write(t, filepath.Join(dir, "run.rego"), "package bulwark.run\n\nimport rego.v1\n\ndefault allow := false\n")
	e = testEnv(t)
	e.Policy.Dir = dir
	o := probePolicyLimits(e, &Control{ID: "BW-2.6"})
	if o.Status != Fail || !strings.Contains(strings.Join(o.Details, " "), "tenant loose: max_pids 0") {
		t.Fatalf("a tenant lifting the pids cap: %s %s %v", o.Status, o.Actual, o.Details)
	}
}
