package engine

import (
	"os"
	"path/filepath"
	"testing"

	"bulwark.dev/bulwark/engine/runcgate/evaluator"
	"bulwark.dev/bulwark/policy/policytest"
)

// inProcess is the policy of these tests: bulwark-policy's conversation (HelperPolicies' protocol)
// served by the test binary itself.
func inProcess(t testing.TB) Policies {
	t.Helper()
	ev, err := evaluator.InProcess()
	if err != nil {
		t.Fatal(err)
	}
	return &helperPolicies{ev: ev}
}

// keyFile writes key's public half to a file for Config.PolicyKeyFile.
func keyFile(t testing.TB, key policytest.Key) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, key.Public, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
