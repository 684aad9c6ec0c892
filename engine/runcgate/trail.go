package runcgate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"bulwark.dev/bulwark/audit"
)

// The events are those of engine's run path (their attributes come from engine/internal/gate),
// so `bulwark audit` shows a bulwark-runc decision exactly as a `bulwark run` one.

// trail collects one request's events and appends them as one batch (one fsync).
type trail struct {
	log *audit.Log
	// async carries the result of an append started by flushAsync.
	async chan error

	mu      sync.Mutex // guards base and pending
	base    audit.Event
	pending []audit.Event
}

func newTrail(log *audit.Log, uid int, tenant, containerID string) *trail {
	var b [6]byte
	rand.Read(b[:])
	return &trail{log: log, base: audit.Event{
		Actor: audit.Actor{UID: &uid}, Tenant: tenant, ContainerID: containerID,
		RequestID: hex.EncodeToString(b[:]),
	}}
}

func (t *trail) add(typ, action string, attrs map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ev := t.base
	ev.Type, ev.Action, ev.Attrs = typ, action, attrs
	t.pending = append(t.pending, ev)
}

func (t *trail) take() []audit.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	evs := t.pending
	t.pending = nil
	return evs
}

func (t *trail) flush() error {
	evs := t.take()
	if len(evs) == 0 {
		return nil
	}
	if _, err := t.log.Append(evs...); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// flushAsync starts appending what is queued; waitAsync returns the append's error.
func (t *trail) flushAsync() {
	t.async = make(chan error, 1)
	go func() { t.async <- t.flush() }()
}

func (t *trail) waitAsync() error { return <-t.async }
