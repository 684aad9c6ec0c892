package daemon

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/policy/api"
)

// call is one authorized request: who asks, with which API version, and the container it
// targets (nil when the route has none).
type call struct {
	who     config.Principal
	version string
	target  *record
	// image is the image reference an image route acts on (normalized).
	image string
	// object is the name of the network or volume a route targets, resolved in the caller's
	// tenant.
	object string
}

type handler func(w http.ResponseWriter, r *http.Request, c *call) error

// target says what a route acts on: nothing, or the container named by its {id}.
type target int

const (
	noTarget target = iota
	containerTarget
	// execTarget: the container of the exec named by {id}.
	execTarget
	// imageTarget: the image reference named by {name} (imagehold.go says who owns it).
	imageTarget
	// networkTarget and volumeTarget: the caller's network or volume named by {id}
	// (networks.go, volumes.go).
	networkTarget
	volumeTarget
)

// Handler is the API: versioned paths (/v1.xx/...) and unversioned ones, every route decided by
// the API policy before its handler runs; an endpoint without a route answers 501.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	r := func(pattern, op string, t target, h handler) { mux.Handle(pattern, s.authorized(op, t, h)) }
	r("GET /_ping", "system.ping", noTarget, s.ping)
	r("HEAD /_ping", "system.ping", noTarget, s.ping)
	r("GET /version", "system.version", noTarget, s.version)
	r("GET /info", "system.info", noTarget, s.info)

	r("POST /containers/create", "container.create", noTarget, s.containerCreate)
	r("GET /containers/json", "container.list", noTarget, s.containerList)
	r("GET /containers/{id}/json", "container.inspect", containerTarget, s.containerInspect)
	r("POST /containers/{id}/start", "container.start", containerTarget, s.containerStart)
	r("POST /containers/{id}/wait", "container.wait", containerTarget, s.containerWait)
	r("POST /containers/{id}/attach", "container.attach", containerTarget, s.containerAttach)
	r("GET /containers/{id}/logs", "container.logs", containerTarget, s.containerLogs)
	r("POST /containers/{id}/stop", "container.stop", containerTarget, s.containerStop)
	r("POST /containers/{id}/kill", "container.kill", containerTarget, s.containerKill)
	r("POST /containers/{id}/restart", "container.restart", containerTarget, s.containerRestart)
	r("DELETE /containers/{id}", "container.remove", containerTarget, s.containerRemove)
	r("POST /containers/{id}/resize", "container.resize", containerTarget, s.containerResize)

	r("GET /containers/{id}/stats", "container.stats", containerTarget, s.containerStats)
	r("GET /containers/{id}/top", "container.top", containerTarget, s.containerTop)
	r("GET /events", "system.events", noTarget, s.eventsStream)
	r("POST /containers/{id}/exec", "container.exec", containerTarget, s.execCreate)
	r("POST /exec/{id}/start", "container.exec", execTarget, s.execStart)
	r("GET /exec/{id}/json", "container.exec.inspect", execTarget, s.execInspect)
	r("POST /exec/{id}/resize", "container.resize", execTarget, s.execResize)

	r("GET /images/json", "image.list", noTarget, s.imageList)
	r("GET /images/{name...}", "image.inspect", noTarget, s.imageInspect)
	r("DELETE /images/{name...}", "image.remove", imageTarget, s.imageRemove)
	r("POST /images/create", "image.pull", noTarget, s.imagePull)

	s.bulwarkRoutes(r)
	r("GET /bulwark/v1/quotas", "bulwark.quotas", noTarget, s.quotas)

	r("POST /networks/create", "network.create", noTarget, s.networkCreate)
	r("GET /networks", "network.list", noTarget, s.networkList)
	r("GET /networks/{id}", "network.inspect", networkTarget, s.networkInspect)
	r("DELETE /networks/{id}", "network.remove", networkTarget, s.networkRemove)
	r("POST /networks/prune", "network.prune", noTarget, s.networkPrune)
	r("POST /networks/{id}/connect", "network.connect", networkTarget, s.networkConnect)
	r("POST /networks/{id}/disconnect", "network.disconnect", networkTarget, s.networkConnect)

	r("POST /volumes/create", "volume.create", noTarget, s.volumeCreate)
	r("GET /volumes", "volume.list", noTarget, s.volumeList)
	r("GET /volumes/{id}", "volume.inspect", volumeTarget, s.volumeInspect)
	r("DELETE /volumes/{id}", "volume.remove", volumeTarget, s.volumeRemove)
	r("POST /volumes/prune", "volume.prune", noTarget, s.volumePrune)

	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("API-Version", APIVersion)
		w.Header().Set("Server", "bulwarkd")
		version, rest, err := splitVersion(req.URL.Path)
		if err != nil {
			writeError(w, err)
			return
		}
		req.URL.Path = rest
		req.URL.RawPath = ""
		req = req.WithContext(context.WithValue(req.Context(), versionKey{}, version))
		_, pattern := mux.Handler(req)
		if pattern == "" {
			setRoute(req.Context(), "unimplemented")
			writeError(w, notImplemented(req.Method+" "+rest))
			return
		}
		setRoute(req.Context(), pattern)
		mux.ServeHTTP(w, req)
	})
}

type versionKey struct{}

// unknownTarget is the answer for a target that names nothing in the caller's view: the same
// whether nothing has that name or another tenant's object has it.
func unknownTarget(t target, ref string) error {
	if t == execTarget {
		return errNoSuchExec(ref)
	}
	return errNoSuchContainer(ref)
}

// authorized wraps a route: the caller from the connection, the target resolved within the
// caller's view, the API policy's decision (refusals audited and answered 403 with their
// codes), then the handler.
func (s *Server) authorized(op string, t target, h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, err := principal(r.Context())
		if err != nil {
			s.log.Warn("connection without credentials", "error", err)
			writeError(w, err)
			return
		}
		c := &call{who: who}
		c.version, _ = r.Context().Value(versionKey{}).(string)
		in := api.Input{Tenant: who.Tenant, Operator: who.Operator, UID: who.UID, GID: who.GID, Operation: op}
		if t == imageTarget {
			ref, owner, err := s.imageOwner(r.PathValue("name"), who)
			if err != nil {
				writeError(w, err)
				return
			}
			c.image = ref
			in.Target = &api.Target{Kind: "image", ID: ref, Owner: owner}
		} else if t == networkTarget || t == volumeTarget {
			resolve := s.networkTarget
			if t == volumeTarget {
				resolve = s.volumeTarget
			}
			if in.Target, err = resolve(r, c); err != nil {
				writeError(w, err)
				return
			}
		} else if t != noTarget {
			var rec *record
			var err error
			if t == containerTarget {
				rec, err = s.recs.resolve(r.PathValue("id"), who)
			} else {
				_, rec, err = s.resolveExec(r.PathValue("id"))
			}
			if err != nil {
				writeError(w, err)
				return
			}
			c.target = rec
			in.Target = &api.Target{Kind: "container", ID: rec.ID, Owner: rec.Tenant}
		}
		d := s.authz.Decide(r.Context(), in)
		s.metrics.Decision(d.Allow, d.Codes())
		if !d.Allow {
			s.refused(in, d)
			if (t == containerTarget || t == execTarget) && in.Target.Owner != who.Tenant {
				// Another tenant's container is answered exactly as one that does not exist: a
				// 403 would tell the caller it exists (the refusal is on the record). Images
				// are seen by every tenant: their refusals say why.
				writeError(w, unknownTarget(t, r.PathValue("id")))
				return
			}
			writeError(w, statusError(http.StatusForbidden, "bulwarkd: %s refused by the API policy: %s", op, d.Message()))
			return
		}
		if in.Target != nil && in.Target.Owner != who.Tenant {
			// An operator reaching into a tenant's container: allowed, and only on the record.
			if err := s.crossTenant(in); err != nil {
				writeError(w, err)
				return
			}
		}
		s.log.Debug("call", "op", op, "tenant", who.Tenant, "uid", who.UID, "path", r.URL.Path, "decision", d.Duration)
		if err := h(w, r, c); err != nil {
			if status := statusOf(err); status >= 500 {
				s.log.Error("call failed", "op", op, "tenant", who.Tenant, "error", err)
			}
			writeError(w, err)
		}
	})
}

func actor(who config.Principal) audit.Actor {
	uid := who.UID
	return audit.Actor{UID: &uid, Principal: "bulwarkd"}
}

// refused audits an API refusal; the refusal stands whether or not the record could be
// written, but a failure to write it is logged.
func (s *Server) refused(in api.Input, d api.Decision) {
	attrs := map[string]string{"operation": in.Operation, "codes": strings.Join(d.Codes(), ","), "reasons": d.Message()}
	ev := audit.Event{Type: audit.TypeDaemon, Action: "api.refused", Actor: actor(config.Principal{UID: in.UID}), Tenant: in.Tenant, Attrs: attrs}
	if in.Target != nil {
		ev.ContainerID = in.Target.ID
		attrs["owner"] = in.Target.Owner
	}
	s.log.Info("refused", "op", in.Operation, "tenant", in.Tenant, "uid", in.UID, "codes", attrs["codes"])
	if _, err := s.audit.Append(ev); err != nil {
		s.log.Error("audit append failed", "action", "api.refused", "error", err)
	}
}

func (s *Server) crossTenant(in api.Input) error {
	ev := audit.Event{Type: audit.TypeDaemon, Action: "api.cross-tenant", Actor: actor(config.Principal{UID: in.UID}), Tenant: in.Tenant,
		ContainerID: in.Target.ID, Attrs: map[string]string{"operation": in.Operation, "owner": in.Target.Owner}}
	if _, err := s.audit.Append(ev); err != nil {
		return fmt.Errorf("cross-tenant access not audited, so not done: %w", err)
	}
	return nil
}

// decideOn decides op on a target a route names in its query (another tenant's quotas or audit
// records) as its own call of the API policy: a refusal is audited and answered 403; an
// operator's access to another tenant's is recorded before it is done.
func (s *Server) decideOn(r *http.Request, c *call, op string, target *api.Target) error {
	in := api.Input{Tenant: c.who.Tenant, Operator: c.who.Operator, UID: c.who.UID, GID: c.who.GID, Operation: op, Target: target}
	if d := s.authz.Decide(r.Context(), in); !d.Allow {
		s.refused(in, d)
		return statusError(http.StatusForbidden, "bulwarkd: %s refused by the API policy: %s", op, d.Message())
	}
	return s.crossTenant(in)
}
