package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"bulwark.dev/bulwark/sandbox"
)

// A detached container is started by the state root's supervisor (monitor.go): SpawnMonitor
// hands it the decided plan, serialised here, with its bind sources as descriptors.

// EncodePlan serialises a decided plan for the supervisor, with the bind-source descriptors
// the monitor must inherit, in order (DecodePlan's files; the caller closes its copies once the
// monitor has started). The records of the steps so far are made durable first: the monitor
// continues the request with a trail of its own.
func EncodePlan(p *Plan) ([]byte, []*os.File, error) {
	if err := p.trail.Flush(); err != nil {
		return nil, nil, err
	}
	paths, files, err := p.binds.Export()
	if err != nil {
		return nil, nil, err
	}
	p.BindSources = paths
	b, err := marshalPlan(p)
	if err != nil {
		for _, f := range files {
			f.Close()
		}
		return nil, nil, err
	}
	return b, files, nil
}

// DecodePlan restores a plan in the monitor; its audit trail continues the request's. file(i)
// is the i-th descriptor EncodePlan returned, as the monitor inherited it.
func (e *Engine) DecodePlan(b []byte, file func(i int) *os.File) (*Plan, error) {
	p := &Plan{}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if p.Request == nil || p.Spec == nil || p.ID == "" || !p.Decision.Allow {
		return nil, errors.New("decode plan: not an allowed plan")
	}
	files := make([]*os.File, len(p.BindSources))
	for i := range files {
		if files[i] = file(i); files[i] == nil {
			return nil, fmt.Errorf("decode plan: bind source %s: descriptor %d not inherited", p.BindSources[i], i)
		}
	}
	binds, err := sandbox.ImportBinds(p.BindSources, files)
	if err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	p.binds = binds
	p.root = e.cfg.Root
	p.trail = newTrail(e.audit, p.Request.Identity, p.Request.Tenant, p.Request.ID)
	p.trail.SetContainer(p.ID)
	p.trail.SetImage(p.Image.Digest)
	return p, nil
}

// ExitStatus maps an engine error to the CLI's exit status, as docker does: 125 when Bulwark
// refuses or fails, 126 when the command cannot be invoked, 127 when it is not found.
func ExitStatus(err error) int {
	if code, ok := sandbox.CommandStatus(err); ok {
		return code
	}
	return 125
}
