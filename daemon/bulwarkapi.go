package daemon

import (
	"errors"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/daemon/bulwarkapi"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/engine/truststate"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy"
	"bulwark.dev/bulwark/policy/api"
	"bulwark.dev/bulwark/signing"
)

// Bulwark's own endpoints (/bulwark/v1/, wire types in daemon/bulwarkapi): a run decided without
// starting anything, the trust status, the caller's audit records and the chain's verification.
// Each is an operation of the API policy like any Docker endpoint, and answers the caller's
// tenant only.

// bulwarkRoutes registers the /bulwark/v1/ endpoints through r (Handler's route function).
func (s *Server) bulwarkRoutes(r func(pattern, op string, t target, h handler)) {
	r("POST "+bulwarkapi.PathDecide, "bulwark.decide", noTarget, s.bulwarkDecide)
	r("GET "+bulwarkapi.PathTrust, "bulwark.trust", noTarget, s.bulwarkTrust)
	r("GET "+bulwarkapi.PathAudit, "bulwark.audit", noTarget, s.bulwarkAudit)
	r("GET "+bulwarkapi.PathAuditVerify, "bulwark.audit.verify", noTarget, s.bulwarkAuditVerify)
}

// bulwarkDecide is a dry run of a create request: mapped exactly as a create is, decided for
// the caller's tenant by the engine's one decision path (trust, image, floor, run policy), and
// answered with every reason. Nothing is created; the engine audits the dry run.
func (s *Server) bulwarkDecide(w http.ResponseWriter, r *http.Request, c *call) error {
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req container.CreateRequest
	if err := strictDecode(raw, &req); err != nil {
		return err
	}
	er, _, err := mapCreate(raw, &req, c.who, newContainerID())
	if err != nil {
		return err
	}
	er.DryRun = true
	plan, err := s.eng.Prepare(r.Context(), er)
	resp, err := decideResponse(plan, err)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// decideResponse turns a dry run's outcome into its answer: a policy denial, an untrusted image
// and a floor refusal are decisions (allow false, with codes); any other error (a malformed
// request, an unknown image) is the request's error.
func decideResponse(plan *engine.Plan, err error) (*bulwarkapi.DecideResponse, error) {
	resp := &bulwarkapi.DecideResponse{Reasons: []bulwarkapi.Reason{}}
	var denied *policy.DeniedError
	switch {
	case err == nil:
		plan.Close()
	case errors.As(err, &denied):
	case errors.Is(err, errdefs.ErrUntrusted):
		resp.Reasons = append(resp.Reasons, bulwarkapi.Reason{Code: bulwarkapi.CodeImageUntrusted, Message: err.Error(), Path: "image"})
		return resp, nil
	case errors.Is(err, errdefs.ErrRefusedByFloor):
		resp.Reasons = append(resp.Reasons, bulwarkapi.Reason{Code: bulwarkapi.CodeFloorRefused, Message: err.Error()})
		return resp, nil
	default:
		return nil, err
	}
	if plan == nil {
		// Denied before a plan existed: the decision is in the error.
		for _, rs := range denied.Decision.Reasons {
			resp.Reasons = append(resp.Reasons, bulwarkapi.Reason(rs))
		}
		resp.Revision = denied.Decision.Revision
		return resp, nil
	}
	resp.Allow = plan.Decision.Allow && err == nil
	for _, rs := range plan.Decision.Reasons {
		resp.Reasons = append(resp.Reasons, bulwarkapi.Reason(rs))
	}
	resp.Revision, resp.InputDigest, resp.Summary = plan.Decision.Revision, plan.InputDigest, plan.Summary()
	b, jerr := engine.PlanJSON(plan)
	if jerr != nil {
		return nil, jerr
	}
	resp.Plan = b
	return resp, nil
}

// bulwarkTrust is the trust status: the pinned root, the verified roles and the signed tags by
// repository, a tenant's view holding the top-level roles and its own delegated role only.
func (s *Server) bulwarkTrust(w http.ResponseWriter, r *http.Request, c *call) error {
	st, err := truststate.Status(s.eng.Root())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, trustResponse(st, c.who.Tenant, c.who.Operator))
	return nil
}

func trustResponse(st *truststate.TrustStatus, tenant string, operator bool) *bulwarkapi.TrustResponse {
	visible := func(role string, delegated bool) bool { return operator || !delegated || role == tenant }
	resp := &bulwarkapi.TrustResponse{Remote: st.Pin.Remote, RootDigest: st.Pin.RootDigest, Roles: []bulwarkapi.Role{}, Repositories: []bulwarkapi.Repository{}}
	delegated := map[string]bool{}
	for _, rl := range st.Verified.Roles {
		delegated[rl.Role] = rl.Delegated
		if !visible(rl.Role, rl.Delegated) {
			continue
		}
		resp.Roles = append(resp.Roles, bulwarkapi.Role{Role: rl.Role, Version: rl.Version, Expires: rl.Expires, Expired: rl.Expired,
			Threshold: rl.Threshold, Keys: len(rl.KeyIDs), Paths: rl.Paths})
	}
	repos := map[string]*bulwarkapi.Repository{}
	for _, t := range st.Verified.Targets {
		name, tag, ok := splitTag(t.Name)
		if !ok || !visible(t.Role, delegated[t.Role]) {
			continue // a digest reference, or another tenant's role
		}
		if repos[name] == nil {
			repos[name] = &bulwarkapi.Repository{Name: name}
		}
		repos[name].Tags = append(repos[name].Tags, bulwarkapi.Tag{Tag: tag, Digest: t.Digest, Role: t.Role})
	}
	for _, rp := range repos {
		resp.Repositories = append(resp.Repositories, *rp)
	}
	sort.Slice(resp.Repositories, func(i, j int) bool { return resp.Repositories[i].Name < resp.Repositories[j].Name })
	return resp
}

// splitTag splits a signed target's name NAME:TAG; NAME@DIGEST is not a tag.
func splitTag(target string) (name, tag string, ok bool) {
	if strings.Contains(target, "@") {
		return "", "", false
	}
	path := signing.TargetPath(target)
	i := strings.LastIndexByte(path, ':')
	return path[:i], path[i+1:], true
}

// auditDir is the state root's audit log (the one the engine and the daemon append to).
func (s *Server) auditDir() string { return filepath.Join(s.eng.Root(), "audit") }

// Default and largest number of records one audit call answers.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 10000
)

// bulwarkAudit answers the newest records of the caller's tenant (since and limit as asked). An
// operator reads every tenant's (or one's, with ?tenant=): a cross-tenant view, recorded first.
func (s *Server) bulwarkAudit(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	f := audit.Filter{Tenant: c.who.Tenant}
	if t := q.Get("tenant"); t != "" && t != c.who.Tenant || t == "" && c.who.Operator {
		if err := s.crossTenantAudit(r, c, t); err != nil {
			return err
		}
		f.Tenant = t
	}
	if v := q.Get("since"); v != "" {
		since, err := parseSince(v)
		if err != nil {
			return err
		}
		f.Since = since
	}
	limit := auditDefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > auditMaxLimit {
			return statusError(http.StatusBadRequest, "limit %q: want 1 to %d", v, auditMaxLimit)
		}
		limit = n
	}
	recs, err := audit.Query(s.auditDir(), f)
	if err != nil {
		return err
	}
	resp := bulwarkapi.AuditResponse{Records: recs, More: len(recs) > limit}
	if resp.More {
		resp.Records = recs[len(recs)-limit:]
	}
	if resp.Records == nil {
		resp.Records = []audit.Record{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// crossTenantAudit decides reading another tenant's audit records (tenant; "": every
// tenant's) as its own call of the API policy, with that tenant as the owner of the target:
// a tenant is refused (CROSS_TENANT, audited), an operator's read is recorded before it is
// done.
func (s *Server) crossTenantAudit(r *http.Request, c *call, tenant string) error {
	owner := tenant
	if owner == "" {
		owner = "*"
	}
	return s.decideOn(r, c, "bulwark.audit", &api.Target{Kind: "audit records of tenant " + owner, Owner: owner})
}

func parseSince(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, statusError(http.StatusBadRequest, "since %q: want an RFC 3339 time or a duration", v)
	}
	return t, nil
}

// bulwarkAuditVerify verifies the whole chain read-only (a torn tail is reported, not
// repaired: that is a write, the operator's bulwark audit verify).
func (s *Server) bulwarkAuditVerify(w http.ResponseWriter, r *http.Request, c *call) error {
	rep, verr := audit.Verify(s.auditDir(), nil)
	resp := bulwarkapi.VerifyResponse{OK: verr == nil, Checkpoints: rep.Checkpoints, Tenant: c.who.Tenant}
	if verr != nil {
		resp.Error = verr.Error()
	}
	if c.who.Operator {
		resp.Records, resp.LastSeq, resp.LastHash = rep.Records, rep.LastSeq, rep.LastHash
	}
	own, err := audit.Query(s.auditDir(), audit.Filter{Tenant: c.who.Tenant})
	if err != nil {
		return err
	}
	for _, rec := range own {
		if rec.Seq <= rep.LastSeq {
			resp.OwnRecords++
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
