package engine

import (
	"fmt"
	"path/filepath"

	"bulwark.dev/bulwark/audit"
)

// Changes to what the engine trusts and how it decides are audited like runs (issue 5: "trust
// and policy changes"): signing/ and policy/ know nothing of the audit log, so the engine
// records their changes (engine/truststate the trust changes, reading back the public state each
// change produced: it links go-tuf, which the engine does not).

// RecordBundleAccepted appends to <root>/audit, durably, that preparing a signed bundle raised
// the root's accepted bundle revision (attrs: gate.BundleWatch.Accepted), as the command that
// prepared it (`bulwark policy eval`, engine/opapolicy.PrepareAudited) must before it reports.
func RecordBundleAccepted(root string, id Identity, attrs map[string]string) error {
	if err := AppendChange(root, ChangeEvent(id, audit.TypePolicy, "bundle-accepted", attrs)); err != nil {
		return fmt.Errorf("policy bundle revision %s was accepted but not audited: %w", attrs["revision"], err)
	}
	return nil
}

// ChangeEvent is the audit event of a change id made (trust, policy).
func ChangeEvent(id Identity, typ, action string, attrs map[string]string) audit.Event {
	uid := id.UID
	return audit.Event{Type: typ, Action: action, Actor: audit.Actor{UID: &uid, Principal: id.Principal}, Attrs: attrs}
}

// AppendChange appends one event to <root>/audit, durably, before the command reports success.
func AppendChange(root string, ev audit.Event) error {
	l, err := audit.Open(filepath.Join(root, "audit"), audit.Options{})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	defer l.Close()
	_, err = l.Append(ev)
	return err
}
