package daemon

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"bulwark.dev/bulwark/signing"
)

// waitAudit waits until the audit log holds n records of type and action.
func (e *daemonEnv) waitAudit(t *testing.T, typ, action string, n int) map[string]any {
	t.Helper()
	for i := 0; ; i++ {
		if recs := e.auditRecords(t, typ, action); len(recs) >= n {
			return recs[len(recs)-1]
		}
		if i == 600 {
			t.Fatalf("no %dth %s %s audit record\n%s", n, typ, action, e.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The daemon re-signs the state root's TUF timestamp and snapshot before they expire, on a timer
// computed from their expiry, and audits it as `bulwark trust refresh` is: a timestamp about to
// expire in seconds is refreshed in time and runs go on after its old expiry; a snapshot about
// to expire is re-signed too (with the timestamp that had already expired).
func TestTrustRefresh(t *testing.T) {
	e := startDaemon(t, nil)
	e.term(t)
	trust := filepath.Join(e.root, "trust")
	// A timestamp signed as if a day ago, less 8 seconds: it expires in 8 seconds.
	short := signing.NewRepo(trust)
	short.Now = func() time.Time { return time.Now().Add(-24*time.Hour + 8*time.Second) }
	if err := short.Refresh(); err != nil {
		t.Fatal(err)
	}
	repo := signing.NewRepo(trust)
	ts0, err := repo.LoadTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(ts0.Signed.Expires); left > 9*time.Second {
		t.Fatalf("the test's timestamp expires in %v", left)
	}
	before := len(e.auditRecords(t, "trust", "refresh"))
	e.start(t)
	rec := e.waitAudit(t, "trust", "refresh", before+1)
	if actor, _ := rec["actor"].(map[string]any); actor["principal"] != "bulwarkd" {
		t.Errorf("trust refresh audit record: %v", rec)
	}
	ts1, err := repo.LoadTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	if ts1.Signed.Version <= ts0.Signed.Version || time.Until(ts1.Signed.Expires) < 12*time.Hour {
		t.Errorf("timestamp after the refresh: version %d (was %d), expires %v", ts1.Signed.Version, ts0.Signed.Version, ts1.Signed.Expires)
	}
	time.Sleep(time.Until(ts0.Signed.Expires) + time.Second)
	e.mustDocker(t, e.alice, "run", "--rm", "busybox:1", "true")

	// A snapshot that expires in 8 seconds (its key rotated with the clock a week back), and a
	// timestamp already expired.
	e.term(t)
	short.Now = func() time.Time { return time.Now().Add(-7*24*time.Hour + 8*time.Second) }
	if err := short.Rotate(metadata.SNAPSHOT); err != nil {
		t.Fatal(err)
	}
	snap0, err := repo.LoadSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	e.start(t)
	e.waitAudit(t, "trust", "refresh", before+2)
	snap1, err := repo.LoadSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap1.Signed.Version <= snap0.Signed.Version || time.Until(snap1.Signed.Expires) < 24*time.Hour {
		t.Errorf("snapshot after the refresh: version %d (was %d), expires %v", snap1.Signed.Version, snap0.Signed.Version, snap1.Signed.Expires)
	}
	e.mustDocker(t, e.alice, "run", "--rm", "busybox:1", "true")
}
