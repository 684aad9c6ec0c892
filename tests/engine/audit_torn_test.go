package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/tests/internal/clitest"
)

// TestAuditVerifyRepairsTornTail: a record cut short by a full disk is a torn tail, not a tamper
// alarm: `audit verify` says so, cuts and keeps the partial bytes, records the repair and passes.
func TestAuditVerifyRepairsTornTail(t *testing.T) {
	f := newFixture(t)
	clitest.Must(t, f.root, "run", "--rm", "--name", f.name(t, "torn"), "busybox:1", "true")
	segs, _ := filepath.Glob(filepath.Join(f.root, "audit", "audit-*.jsonl"))
	if len(segs) == 0 {
		t.Fatal("no audit segment")
	}
	last := segs[len(segs)-1]
	fh, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(`{"v":"bulwark.dev/audit/v1","seq":99,"time":"2026-`) // ENOSPC mid-record
	fh.Close()
	r := clitest.Run(t, f.root, "audit", "verify")
	if r.Code != 0 || !strings.Contains(r.Stdout, "torn tail") || strings.Contains(r.Stderr, "chain broken") {
		t.Fatalf("audit verify over a torn tail: exit %d\nstdout %s\nstderr %s", r.Code, r.Stdout, r.Stderr)
	}
	if out := clitest.Must(t, f.root, "audit", "verify"); strings.Contains(out, "torn") || !strings.Contains(out, "OK") {
		t.Errorf("second verify: %s", out)
	}
	if out := clitest.Must(t, f.root, "audit", "query", "--type", "audit"); !strings.Contains(out, `"repair"`) {
		t.Errorf("no repair record: %s", out)
	}
}
