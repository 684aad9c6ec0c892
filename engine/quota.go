package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/internal/names"
	"bulwark.dev/bulwark/internal/procstat"
	"bulwark.dev/bulwark/policy/document"
)

// Per-tenant quotas (issue 10): the policy decides the limits (policy.QuotaQuery), the engine
// counts what a tenant holds and asks whether one more container fits, under the tenant's quota
// lock (<root>/quota/<tenant>.lock), so that the daemonless CLI and bulwarkd on one state root
// never pass a limit together: 50 parallel creates against a quota of 10 leave 10.
//
// What a tenant holds is recomputed from the records on every count, never kept in a counter:
//   - every container record of the tenant (<root>/engine/<id>/meta.json), whatever its state:
//     a stopped container exists until it is removed, as docker ps -a shows it;
//   - every reservation (<root>/quota/<tenant>/<id>.<holder>.json) of a container that has no
//     record yet, while its holder lives: a run between its decision and its record holds one
//     while its process runs; bulwarkd holds one for a created container while its own record
//     of it (a file) exists. A run killed in between, or a record removed, leaves a reservation
//     nobody holds: it is not counted, and removed by the next count;
//   - the images charged to the tenant (<root>/quota/<tenant>/images/), while they are stored.
//
// A container counts the limits its effective spec sets (after the floor and the policy): one
// run without --memory or --pids-limit counts the default it gets.

// Resources are what one container holds against its tenant's quotas: the limits its effective
// spec sets.
type Resources struct {
	Memory   int64 `json:"memory"`
	Pids     int64 `json:"pids"`
	NanoCPUs int64 `json:"nanoCPUs"`
}

// specResources reads a container's limits from its effective spec.
func specResources(s *specs.Spec) Resources {
	var r Resources
	if s == nil || s.Linux == nil || s.Linux.Resources == nil {
		return r
	}
	lr := s.Linux.Resources
	if lr.Memory != nil && lr.Memory.Limit != nil && *lr.Memory.Limit > 0 {
		r.Memory = *lr.Memory.Limit
	}
	if lr.Pids != nil && lr.Pids.Limit != nil && *lr.Pids.Limit > 0 {
		r.Pids = *lr.Pids.Limit
	}
	if c := lr.CPU; c != nil && c.Quota != nil && c.Period != nil && *c.Quota > 0 && *c.Period > 0 {
		r.NanoCPUs = *c.Quota * 1_000_000_000 / int64(*c.Period)
	}
	return r
}

// Resources is what the plan's container holds against its tenant's quotas.
func (p *Plan) Resources() Resources { return specResources(p.Spec) }

func (r Resources) add(u *document.QuotaUsage) {
	u.Containers++
	u.Memory += r.Memory
	u.Pids += r.Pids
	u.NanoCPUs += r.NanoCPUs
}

// reservation is a container counted before its record exists. Exactly one holder: Process
// holds it while that process runs, File while that file exists.
type reservation struct {
	ID        string    `json:"id"`
	Resources Resources `json:"resources"`
	Process   *Process  `json:"process,omitempty"`
	File      string    `json:"file,omitempty"`
}

func (r *reservation) held() bool {
	if r.Process != nil {
		return procstat.Alive(r.Process.Pid, r.Process.Start)
	}
	if r.File == "" {
		return false
	}
	_, err := os.Lstat(r.File)
	return err == nil
}

// name is the reservation's file name: one per holder of a container id.
func (r *reservation) name() string {
	if r.Process != nil {
		return fmt.Sprintf("%s.p%d-%d.json", r.ID, r.Process.Pid, r.Process.Start)
	}
	return r.ID + ".f.json"
}

func (e *Engine) quotaDir(tenant string) string { return filepath.Join(e.cfg.Root, "quota", tenant) }

// lockQuota takes the tenant's quota lock (exclusive: counting and reserving are one step).
func (e *Engine) lockQuota(tenant string) (func(), error) {
	if !names.Tenant(tenant) {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "tenant %q: want [a-z0-9][a-z0-9-]{0,62}", tenant)
	}
	if err := os.MkdirAll(filepath.Join(e.quotaDir(tenant), "images"), 0o700); err != nil {
		return nil, fmt.Errorf("quota state: %w", err)
	}
	unlock, _, err := lockFile(e.quotaDir(tenant)+".lock", unix.LOCK_EX)
	return unlock, err
}

// quotaUsage counts what tenant holds, leaving out container except (the one being decided,
// which may hold a reservation already). Reservations nobody holds any more are removed; the
// caller holds the tenant's quota lock.
func (e *Engine) quotaUsage(tenant, except string) (document.QuotaUsage, error) {
	var u document.QuotaUsage
	recorded, err := e.recordNames()
	if err != nil {
		return u, fmt.Errorf("count containers: %w", err)
	}
	counted := map[string]bool{except: true}
	for _, name := range recorded {
		if counted[name] {
			continue
		}
		m, err := e.readMeta(name)
		if err != nil || m.owner() != tenant {
			continue // another tenant's, or a claim without a record yet (its reservation counts)
		}
		counted[m.ID] = true
		r := Resources{}
		if m.Resources != nil {
			r = *m.Resources
		} else if s, err := e.readEffectiveSpec(m.ID); err == nil {
			r = specResources(s) // a record from before quotas
		}
		r.add(&u)
	}
	files, err := os.ReadDir(e.quotaDir(tenant))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return u, fmt.Errorf("count reservations: %w", err)
	}
	for _, f := range files {
		if f.IsDir() || !strings.HasSuffix(f.Name(), ".json") {
			continue
		}
		p := filepath.Join(e.quotaDir(tenant), f.Name())
		var r reservation
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil || !names.Object(r.ID) {
			return u, fmt.Errorf("quota reservation %s: unreadable (%v)", p, err)
		}
		if !r.held() {
			os.Remove(p) // its run died before the record, or its holder's record is gone
			continue
		}
		if counted[r.ID] {
			continue
		}
		counted[r.ID] = true
		r.Resources.add(&u)
	}
	u.ImagesSize, err = e.imagesCharged(tenant)
	return u, err
}

// limitsCache holds each tenant's limits: the policy is prepared once per engine, so they do not
// change while it lives.
type limitsCache struct {
	mu sync.Mutex                      // guards m
	m  map[string]document.QuotaLimits // tenant → limits
}

// quotaLimits are tenant's limits; an error when the policy refuses to say (its reasons).
func (e *Engine) quotaLimits(ctx context.Context, pe Evaluator, tenant string) (document.QuotaLimits, error) {
	e.limits.mu.Lock()
	l, ok := e.limits.m[tenant]
	e.limits.mu.Unlock()
	if ok {
		return l, nil
	}
	d, err := pe.DecideQuota(ctx, document.QuotaRequest{Tenant: tenant})
	if err == nil {
		err = d.Err()
	}
	if err != nil {
		return l, err
	}
	e.limits.mu.Lock()
	defer e.limits.mu.Unlock()
	if e.limits.m == nil {
		e.limits.m = map[string]document.QuotaLimits{}
	}
	e.limits.m[tenant] = d.Limits
	return d.Limits, nil
}

// reserveQuota decides whether container r.ID of tenant fits in its quotas (limits, as the
// policy named them) and, unless dryRun, records r (its holder set) under the tenant's quota
// lock; release removes the reservation. A tenant without quotas (limits nil) is neither counted
// nor reserved for, and its run needs no prepared policy (its decision may come from the cache);
// its containers count from their records once a policy gives it quotas. The decision's refusal
// is recorded in t with its codes.
func (e *Engine) reserveQuota(ctx context.Context, tenant string, limits *document.QuotaLimits, r reservation, dryRun bool, t *trail) (release func(), err error) {
	release = func() {}
	if limits == nil {
		return release, nil
	}
	pe, err := e.preparedPolicy(ctx, t)
	if err != nil {
		return release, err
	}
	unlock, err := e.lockQuota(tenant)
	if err != nil {
		return release, err
	}
	defer unlock()
	usage, err := e.quotaUsage(tenant, r.ID)
	if err != nil {
		return release, err
	}
	var asked document.QuotaUsage
	r.Resources.add(&asked)
	d, err := pe.DecideQuota(ctx, document.QuotaRequest{Tenant: tenant, Usage: usage, Request: &asked})
	if err != nil {
		return release, err
	}
	attrs := map[string]string{"usage": jsonString(usage), "request": jsonString(asked), "limits": jsonString(d.Limits)}
	if err := d.Err(); err != nil {
		attrs["reasons"] = err.Error()
		t.Add(audit.TypePolicy, "quota.refused", attrs)
		return release, err
	}
	t.Add(audit.TypePolicy, "quota", attrs)
	if dryRun {
		return release, nil
	}
	p := filepath.Join(e.quotaDir(tenant), r.name())
	b, err := json.Marshal(r)
	if err != nil {
		return release, err
	}
	if err := atomicfile.Write(p, b, atomicfile.Options{}); err != nil {
		return release, fmt.Errorf("quota reservation: %w", err)
	}
	// Removed under the lock, as a count removes one: a count lists the reservation, or finds the
	// container's record (made before the release), never a file gone between listing and reading.
	// Without the lock it stays: counted once with its container's record (same id), it is
	// collected by the first count after its holder is gone.
	return func() {
		unlock, err := e.lockQuota(tenant)
		if err != nil {
			return
		}
		defer unlock()
		os.Remove(p)
	}, nil
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// HoldQuota counts container id of who's tenant, holding res, against the tenant's quotas for as
// long as file exists (bulwarkd's record of a created container: docker create makes a
// container that exists, and counts, before it ever starts). It is decided and recorded under the
// tenant's quota lock; a refusal is a *document.DeniedError with the quota's codes, audited.
// Removing file releases it.
func (e *Engine) HoldQuota(ctx context.Context, who Caller, id string, res Resources, file string) error {
	if !names.Object(id) || !filepath.IsAbs(file) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "quota hold of %q by %q: want a container id and an absolute file", id, file)
	}
	t := newTrail(e.audit, who.Identity, who.tenant(), NewID())
	t.SetContainer(id)
	pe, err := e.preparedPolicy(ctx, t)
	if err != nil {
		return errors.Join(err, t.Flush())
	}
	limits, err := e.quotaLimits(ctx, pe, who.tenant())
	if err == nil && limits.Any() {
		_, err = e.reserveQuota(ctx, who.tenant(), &limits, reservation{ID: id, Resources: res, File: file}, false, t)
	}
	return errors.Join(err, t.Flush())
}

// QuotaStatus is a tenant's limits (nil: none) and what it holds.
type QuotaStatus struct {
	Tenant string               `json:"tenant"`
	Limits document.QuotaLimits `json:"limits"`
	Usage  document.QuotaUsage  `json:"usage"`
}

// Quota reports tenant's quotas and usage, counted as a reservation would count them.
func (e *Engine) Quota(ctx context.Context, tenant string) (*QuotaStatus, error) {
	pe, err := e.preparedPolicy(ctx, nil)
	if err != nil {
		return nil, err
	}
	limits, err := e.quotaLimits(ctx, pe, tenant)
	if err != nil {
		return nil, err
	}
	unlock, err := e.lockQuota(tenant)
	if err != nil {
		return nil, err
	}
	defer unlock()
	usage, err := e.quotaUsage(tenant, "")
	if err != nil {
		return nil, err
	}
	return &QuotaStatus{Tenant: tenant, Limits: limits, Usage: usage}, nil
}
