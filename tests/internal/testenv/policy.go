package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BindPolicy writes operator policy data (a directory for `bulwark --policy-dir` or
// `bulwark-runc --policy`) that keeps the default rules and the shipped limits and grants, and
// lets tenant "default" bind host paths in or below dirs: host binds are deny-by-default.
func BindPolicy(t testing.TB, dirs ...string) string {
	t.Helper()
	return bindPolicy(t, "bind_sources", dirs)
}

// WritableBindPolicy is BindPolicy with dirs in writable_bind_sources: tenant "default" may bind
// them, and below them, read-write.
func WritableBindPolicy(t testing.TB, dirs ...string) string {
	t.Helper()
	return bindPolicy(t, "writable_bind_sources", dirs)
}

func bindPolicy(t testing.TB, key string, dirs []string) string {
	list, err := json.Marshal(dirs)
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`{"bulwark": {
  "defaults": {"grantable_capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"],
               "max_memory": 8589934592, "max_pids": 4096, "bind_sources": [], "writable_bind_sources": []},
  "tenants": {"default": {%q: %s}}}}`, key, list)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// WriteJSON writes v, indented, to the file p (mode 0600), failing the test on error.
func WriteJSON(tb testing.TB, p string, v any) {
	tb.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
