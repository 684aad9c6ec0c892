package runcgate

import (
	"errors"
	"fmt"
	"path/filepath"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/sandbox"
)

// An operation on another tenant's container is answered by the sandbox exactly as one on a
// missing container (sandbox.Runtime.Load); the refusal itself is for the operator, in the audit
// log under the persistent state root.

// AuditRefusals returns the sandbox event sink of one bulwark-runc command (operation): every
// event goes to next (the runtime's log), and a sandbox.EventAccessRefused is also appended to
// the audit log of cfg.StateRoot, durably, before the sandbox answers. An append that fails is
// reported to failed; the refusal stands either way.
func AuditRefusals(cfg Config, operation string, next sandbox.EventSink, failed func(error)) sandbox.EventSink {
	return &refusals{cfg: cfg, operation: operation, next: next, failed: failed}
}

type refusals struct {
	cfg       Config
	operation string
	next      sandbox.EventSink
	failed    func(error)
}

func (r *refusals) Event(containerID, action string, attrs map[string]string) {
	r.next.Event(containerID, action, attrs)
	if action != sandbox.EventAccessRefused {
		return
	}
	if err := r.audit(containerID, attrs); err != nil {
		r.failed(fmt.Errorf("%s %s: the refusal was not audited: %w", r.operation, containerID, err))
	}
}

func (r *refusals) audit(containerID string, attrs map[string]string) error {
	if !filepath.IsAbs(r.cfg.StateRoot) {
		return fmt.Errorf("state root %q: must be an absolute path", r.cfg.StateRoot)
	}
	log, err := audit.Open(filepath.Join(r.cfg.StateRoot, "audit"), audit.Options{})
	if err != nil {
		return fmt.Errorf("open audit log: %w", err)
	}
	uid := r.cfg.UID
	t := gate.NewTrail(log, audit.Actor{UID: &uid}, attrs["tenant"], newRequestID())
	t.SetContainer(containerID)
	t.Add(audit.TypeContainer, sandbox.EventAccessRefused, map[string]string{
		"runtime": "bulwark-runc", "operation": r.operation, "owner": attrs["owner"],
	})
	return errors.Join(t.Flush(), log.Close())
}
