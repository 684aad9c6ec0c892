package daemon

import (
	"context"
	"errors"
	"net/http"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/policy/api"
)

// Quotas: a created container counts against its tenant's quotas from docker create on (it
// exists, as docker ps -a shows it), held by the daemon's record of it (engine.HoldQuota); a start
// is counted again by the engine on what holds then. GET /bulwark/v1/quotas shows the caller its
// tenant's limits and usage; an operator names any tenant with ?tenant=, audited as a
// cross-tenant read.

// holdQuota counts rec's container, holding res, against its tenant's quotas for as long as the
// daemon's record of it exists; refused, the record is removed and the refusal (403, with the
// quota's codes) returned.
func (s *Server) holdQuota(ctx context.Context, c *call, rec *record, res engine.Resources) error {
	err := s.eng.HoldQuota(ctx, engineCaller(c, rec), rec.ID, res, s.recs.path(rec.ID))
	if err != nil {
		if rerr := s.recs.remove(rec.ID); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

func (s *Server) quotas(w http.ResponseWriter, r *http.Request, c *call) error {
	tenant := c.who.Tenant
	if t := r.URL.Query().Get("tenant"); t != "" && t != tenant {
		// Another tenant's quotas: decided with that tenant as the owner (the policy refuses a
		// tenant; an operator's read is audited).
		if err := s.decideOn(r, c, "bulwark.quotas", &api.Target{Kind: "quotas of tenant " + t, Owner: t}); err != nil {
			return err
		}
		tenant = t
	}
	if tenant == "" {
		return statusError(http.StatusBadRequest, "the caller has no tenant: name one (?tenant=)")
	}
	st, err := s.eng.Quota(r.Context(), tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
