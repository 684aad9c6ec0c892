package daemon

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/engine/truststate"
	"bulwark.dev/bulwark/signing"
)

// The state root's own TUF repository (made by `bulwark trust init`) signs a timestamp that
// expires after a day and a snapshot that expires after a week: without a refresh every run is
// refused once either expires (verification fails closed). The daemon re-signs them as `bulwark
// trust refresh` does (signing.Repo.Refresh: the timestamp always, the snapshot when less than
// half its lifetime is left), on a timer computed from their expiry: at half the time the sooner
// of them has left, and at least hourly. Each refresh is audited as `bulwark trust refresh` is
// (a trust refresh record, by bulwarkd); a failure is logged and audited (daemon
// trust-refresh.failed) and retried. A repository pinned elsewhere (no local metadata) is its
// signer's to refresh: the daemon only looks again hourly.

const (
	maxRefreshInterval = time.Hour
	refreshRetry       = time.Minute
)

// refreshTrust runs until ctx ends.
func (s *Server) refreshTrust(ctx context.Context) {
	repo := signing.NewRepo(filepath.Join(s.eng.Root(), "trust"))
	for {
		wait := s.refreshOnce(repo)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// refreshOnce refreshes the repository when its metadata is due and says when to look again.
func (s *Server) refreshOnce(repo *signing.Repo) time.Duration {
	wait, err := refreshDue(repo, time.Now())
	if errors.Is(err, fs.ErrNotExist) {
		return maxRefreshInterval
	}
	if err == nil && wait > 0 {
		return wait
	}
	if err == nil {
		err = repo.Refresh()
	}
	if err == nil {
		err = truststate.RecordTrustChange(s.eng.Root(), engine.Identity{UID: 0, Principal: "bulwarkd"}, truststate.TrustChange{Action: "refresh"})
	}
	if err != nil {
		s.log.Error("TUF metadata refresh failed", "error", err, "retry", refreshRetry)
		s.event("trust-refresh.failed", map[string]string{"error": err.Error()})
		return refreshRetry
	}
	wait, err = refreshDue(repo, time.Now())
	if err != nil || wait <= 0 {
		// Just re-signed and already due again: the lifetimes are shorter than the clock's
		// resolution here; do not spin.
		return refreshRetry
	}
	s.log.Info("TUF metadata refreshed", "next", wait.Round(time.Second))
	return wait
}

// refreshDue is how long until the timestamp and snapshot need re-signing: half the time the
// sooner-expiring of them has left, at most maxRefreshInterval; 0 when due now. An error wrapping
// fs.ErrNotExist: the state root has no local repository.
func refreshDue(repo *signing.Repo, now time.Time) (time.Duration, error) {
	ts, err := repo.LoadTimestamp()
	if err != nil {
		return 0, err
	}
	snap, err := repo.LoadSnapshot()
	if err != nil {
		return 0, err
	}
	left := min(ts.Signed.Expires.Sub(now), snap.Signed.Expires.Sub(now))
	return max(0, min(left/2, maxRefreshInterval)), nil
}
