package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/internal/runroot"
)

// probeAuditVerify verifies the whole audit chain and every checkpoint (audit.Verify only reads;
// a torn tail is reported, not repaired).
func probeAuditVerify(e *Env, c *Control) Outcome {
	dir := filepath.Join(e.Root, "audit")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return fail("no audit log at %s", dir)
	}
	rep, err := audit.Verify(dir, nil)
	if err != nil {
		return fail("%v", err)
	}
	return pass("%d records (last seq %d), %d checkpoints verified", rep.Records, rep.LastSeq, rep.Checkpoints)
}

// probeAuditCheckpoint: no record stays unanchored by a signed checkpoint for longer than the
// control allows (the oldest record after the last checkpoint is younger than maxUnanchored).
func probeAuditCheckpoint(e *Env, c *Control) Outcome {
	var p struct {
		MaxUnanchored duration `json:"maxUnanchored"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	dir := filepath.Join(e.Root, "audit")
	var last audit.Checkpoint
	ck, err := audit.LatestCheckpoint(dir)
	switch {
	case err == nil:
		last = ck
	case !errors.Is(err, os.ErrNotExist):
		return e.errOutcome(c, err)
	}
	recs, err := audit.Query(dir, audit.Filter{})
	if err != nil {
		return e.errOutcome(c, err)
	}
	i := sort.Search(len(recs), func(i int) bool { return recs[i].Seq > last.Seq })
	since := "no checkpoint yet"
	if last.Seq > 0 {
		since = fmt.Sprintf("last checkpoint at seq %d, %s ago", last.Seq, e.Now.Sub(last.Time).Round(time.Second))
	}
	if i == len(recs) {
		return pass("every record anchored (%s)", since)
	}
	age := e.Now.Sub(recs[i].Time).Round(time.Second)
	if age > time.Duration(p.MaxUnanchored) {
		return fail("%d records unanchored, the oldest %s old (%s)", len(recs)-i, age, since)
	}
	return pass("%d records unanchored, the oldest %s old (%s)", len(recs)-i, age, since)
}

// probeTrustExpiry: no trust metadata role has expired, and none expires within its horizon.
func probeTrustExpiry(e *Env, c *Control) Outcome {
	var p struct {
		Horizon map[string]duration `json:"horizon"`
	}
	if err := c.params(&p); err != nil {
		return fail("%v", err)
	}
	tv := e.trust()
	if tv.err != nil {
		return fail("trust metadata does not verify: %v", tv.err)
	}
	roles := make([]string, 0, len(tv.expires))
	for r := range tv.expires {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	var expired, soon, details []string
	for _, r := range roles {
		exp := tv.expires[r]
		left := exp.Sub(e.Now).Round(time.Minute)
		h, ok := p.Horizon[r]
		if !ok {
			h = p.Horizon["delegated"]
		}
		switch {
		case !e.Now.Before(exp):
			expired = append(expired, r)
			details = append(details, fmt.Sprintf("%s expired %s (%s ago)", r, exp.Format(time.RFC3339), -left))
		case left < time.Duration(h):
			soon = append(soon, r)
			details = append(details, fmt.Sprintf("%s expires %s (in %s, within %s)", r, exp.Format(time.RFC3339), left, time.Duration(h)))
		default:
			details = append(details, fmt.Sprintf("%s expires %s (in %s)", r, exp.Format(time.RFC3339), left))
		}
	}
	switch {
	case len(expired) > 0:
		return Outcome{Status: Fail, Actual: fmt.Sprintf("expired: %v (%s)", expired, tv.source), Details: details}
	case len(soon) > 0:
		return Outcome{Status: Warn, Actual: fmt.Sprintf("expiring within the horizon: %v", soon), Details: details}
	}
	return Outcome{Status: Pass, Actual: fmt.Sprintf("%d roles unexpired (%s)", len(roles), tv.source), Details: details}
}

// probeContainersCount reports how many containers the engine keeps records of (in the state
// root, and a foreground --rm run's in the run root) and how many run.
func probeContainersCount(e *Env, c *Control) Outcome {
	run := e.RunRoot
	if run == "" {
		run = runroot.Of(e.Root)
	}
	n := 0
	for _, dir := range []string{filepath.Join(e.Root, "engine"), filepath.Join(run, "engine")} {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return e.errOutcome(c, err)
		}
		for _, ent := range ents {
			if ent.IsDir() {
				n++
			}
		}
	}
	return info("%d containers recorded, %d running", n, len(e.Containers))
}
