package daemon

import (
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"bulwark.dev/bulwark/signing"
)

func TestRefreshDue(t *testing.T) {
	repo := signing.NewRepo(filepath.Join(t.TempDir(), "trust"))
	if _, err := refreshDue(repo, time.Now()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no repository: %v, want fs.ErrNotExist", err)
	}
	if err := repo.Init(signing.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ts, err := repo.LoadTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	exp := ts.Signed.Expires // the timestamp expires first (a day; the snapshot a week)
	for _, c := range []struct {
		now  time.Time
		want time.Duration
	}{
		{time.Now(), maxRefreshInterval},
		{exp.Add(-10 * time.Second), 5 * time.Second},
		{exp.Add(-90 * time.Minute), 45 * time.Minute},
		{exp, 0},
		{exp.Add(time.Hour), 0},
	} {
		if got, err := refreshDue(repo, c.now); err != nil || got != c.want {
			t.Errorf("%v before the timestamp's expiry: due in %v (%v), want %v", exp.Sub(c.now), got, err, c.want)
		}
	}
}
