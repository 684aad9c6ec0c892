package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

var containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// newContainerID is a random 64-hex id, as Docker's.
func newContainerID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// engineCaller is who the engine is told acts: the connection's uid, for the container's owner
// (the API policy has decided that the caller may).
func engineCaller(c *call, rec *record) engine.Caller {
	return engine.Caller{Identity: engine.Identity{UID: c.who.UID, GID: c.who.GID, Principal: "bulwarkd"}, Tenant: rec.Tenant}
}

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request, c *call) error {
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if name != "" && !containerNameRE.MatchString(name) {
		return statusError(http.StatusBadRequest, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if p := r.URL.Query().Get("platform"); p != "" && p != "linux" && !strings.HasPrefix(p, "linux/") {
		return statusError(http.StatusBadRequest, "platform %q: bulwarkd runs linux containers", p)
	}
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	raw = dropEmptyEndpoints(raw)
	var req container.CreateRequest
	if err := strictDecode(raw, &req); err != nil {
		return err
	}
	id := newContainerID()
	if name == "" {
		name = "c-" + id[:12]
	}
	er, warnings, err := mapCreate(raw, &req, c.who, id)
	if err != nil {
		return err
	}
	// On its network, the container answers to its per-tenant name and short id, as in Docker.
	er.NetworkAliases = append([]string{name, id[:12]}, er.NetworkAliases...)
	// Decided now, so a refusal comes with the create (docker run shows it at once); decided
	// again at start, on what holds then.
	dry := *er
	dry.DryRun = true
	plan, err := s.eng.Prepare(r.Context(), &dry)
	if err != nil {
		return err
	}
	plan.Close()
	rec := &record{ID: id, Name: name, Tenant: c.who.Tenant, UID: c.who.UID, Created: time.Now().UTC(),
		Request: *er, Config: req.Config, HostConfig: req.HostConfig}
	if req.HostConfig != nil {
		rec.AutoRemove = req.HostConfig.AutoRemove
	}
	if err := s.recs.add(rec); err != nil {
		return err
	}
	if err := s.holdQuota(r.Context(), c, rec, plan.Resources()); err != nil {
		return err
	}
	s.events.publish(rec, events.ActionCreate, nil)
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, container.CreateResponse{ID: id, Warnings: warnings})
	return nil
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.drainBody(w, r); err != nil {
		return err
	}
	rec := c.target
	if rec.Started {
		if st := s.stateOf(rec, engineCaller(c, rec)); st.status == container.StateRunning || st.status == container.StatePaused {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		if err := s.startAgain(r.Context(), c, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	req := rec.Request
	req.ID, req.DryRun = "", false
	req.Identity = engine.Identity{UID: c.who.UID, GID: c.who.GID, Principal: "bulwarkd"}
	plan, err := s.eng.Prepare(r.Context(), &req)
	if err != nil {
		return s.startFailed(rec, engine.ExitStatus(err), err)
	}
	if rec.Config.OpenStdin && !rec.Config.Tty {
		if plan.Stdin, err = s.stdins.take(rec.ID); err != nil {
			plan.Close()
			return s.startFailed(rec, 125, err)
		}
	}
	_, err = s.spawnMonitor(plan)
	if plan.Stdin != nil {
		plan.Stdin.Close() // the supervisor has its own
	}
	if err != nil {
		code := engine.ExitStatus(err)
		var me *engine.MonitorError
		if errors.As(err, &me) {
			code = me.Code
		}
		if code == 126 || code == 127 {
			err = statusError(http.StatusBadRequest, "failed to start container %s: %s", rec.ID[:12], err)
		}
		return s.startFailed(rec, code, err)
	}
	rec, err = s.recs.update(rec.ID, func(r *record) { r.Started = true })
	if err != nil {
		return err
	}
	s.watch.start(rec)
	s.events.publish(rec, events.ActionStart, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startFailed ends a container that could not start as Docker does: exited with the status
// docker run gives the failure (125, or 126/127 for a command that cannot be run), its waiting
// and attached clients released, and removed when it was to be removed on exit.
func (s *Server) startFailed(rec *record, code int, err error) error {
	info := &engine.ExitInfo{Code: code, Finished: time.Now().UTC()}
	if rec.AutoRemove {
		if rerr := s.recs.remove(rec.ID); rerr != nil {
			return errors.Join(err, rerr)
		}
		s.watch.exit(rec.ID, info.Code)
		s.watch.removed(rec.ID)
		return err
	}
	if _, uerr := s.recs.update(rec.ID, func(r *record) { r.Exit = info }); uerr != nil {
		return errors.Join(err, uerr)
	}
	s.watch.exit(rec.ID, info.Code)
	return err
}

// state is a container's state as Docker says it.
type state struct {
	status   container.ContainerState
	pid      int
	exit     *engine.ExitInfo
	started  time.Time
	finished time.Time
}

func (s *Server) stateOf(rec *record, c engine.Caller) state {
	if !rec.Started {
		if rec.Exit != nil { // its start failed
			return state{status: container.StateExited, exit: rec.Exit, finished: rec.Exit.Finished}
		}
		return state{status: container.StateCreated}
	}
	ctr, err := s.eng.Inspect(rec.ID, c)
	if err != nil {
		// Gone from the engine (removed outside the daemon): exited, with what was seen.
		st := state{status: container.StateExited, exit: rec.Exit}
		if rec.Exit != nil {
			st.finished = rec.Exit.Finished
		}
		return st
	}
	st := state{pid: ctr.Pid, exit: ctr.Exit, started: ctr.Started}
	if ctr.Exit != nil {
		st.finished = ctr.Exit.Finished
	}
	switch ctr.Status {
	case "running":
		st.status = container.StateRunning
	case "paused":
		st.status = container.StatePaused
	case "creating", "created":
		st.status = container.StateCreated
	case "removing":
		st.status = container.StateRemoving
	default:
		st.status, st.pid = container.StateExited, 0
	}
	return st
}

func (st state) exitCode() int {
	if st.exit == nil {
		return 0
	}
	return st.exit.Code
}

// describe is Docker's ps Status column.
func (st state) describe(now time.Time) string {
	switch st.status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(st.started))
	case container.StatePaused:
		return "Up " + units.HumanDuration(now.Sub(st.started)) + " (Paused)"
	case container.StateExited:
		if st.finished.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.exitCode())
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.exitCode(), units.HumanDuration(now.Sub(st.finished)))
	case container.StateRemoving:
		return "Removal In Progress"
	}
	return "Created"
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request, c *call) error {
	if f := r.URL.Query().Get("filters"); f != "" && f != "{}" {
		return notImplemented("container list filters")
	}
	all := boolParam(r, "all")
	out := []container.Summary{}
	now := time.Now()
	for _, rec := range s.recs.list(c.who.Tenant) {
		st := s.stateOf(rec, engineCaller(c, rec))
		if !all && st.status != container.StateRunning && st.status != container.StatePaused {
			continue
		}
		sum := container.Summary{ID: rec.ID, Names: []string{"/" + rec.Name}, Image: rec.Request.Image,
			Command: strings.Join(append(append([]string{}, rec.Config.Entrypoint...), rec.Config.Cmd...), " "),
			Created: rec.Created.Unix(), Labels: rec.Config.Labels, State: st.status, Status: st.describe(now),
			Ports: s.portSummaries(rec, engineCaller(c, rec), st.status == container.StateRunning), Mounts: []container.MountPoint{}}
		if sum.Labels == nil {
			sum.Labels = map[string]string{}
		}
		out = append(out, sum)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	st := s.stateOf(rec, engineCaller(c, rec))
	resp := container.InspectResponse{
		ID: rec.ID, Created: rec.Created.Format(time.RFC3339Nano), Name: "/" + rec.Name, Image: rec.Request.Image,
		Driver: "bulwark", Platform: "linux", Config: rec.Config,
		LogPath: s.eng.LogPath(rec.ID), Mounts: s.mountPoints(rec, engineCaller(c, rec)), ExecIDs: []string{},
		NetworkSettings: s.networkSettings(rec, engineCaller(c, rec), st.status == container.StateRunning),
		State: &container.State{Status: st.status, Running: st.status == container.StateRunning,
			Paused: st.status == container.StatePaused, Pid: st.pid, ExitCode: st.exitCode(),
			StartedAt: zeroTime(st.started), FinishedAt: zeroTime(st.finished)},
	}
	if st.exit != nil {
		resp.State.OOMKilled = st.exit.OOMKilled
	}
	if args := append(append([]string{}, rec.Config.Entrypoint...), rec.Config.Cmd...); len(args) > 0 {
		resp.Path, resp.Args = args[0], args[1:]
	}
	// The host configuration as it applies (clients read the log driver to know they can
	// read logs).
	hc := container.HostConfig{}
	if rec.HostConfig != nil {
		hc = *rec.HostConfig
	}
	hc.LogConfig.Type = "json-file"
	resp.HostConfig = &hc
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func zeroTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// stopTimeout is how long stop and restart wait after SIGTERM before SIGKILL: the request's t,
// else the container's StopTimeout, else 10 s. Only SIGTERM stops a container.
func stopTimeout(r *http.Request, rec *record) (time.Duration, error) {
	timeout := 10 * time.Second
	if rec.Config.StopTimeout != nil {
		timeout = time.Duration(*rec.Config.StopTimeout) * time.Second
	}
	if t := r.URL.Query().Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return 0, statusError(http.StatusBadRequest, "t %q: want seconds", t)
		}
		timeout = time.Duration(n) * time.Second
	}
	if sig := r.URL.Query().Get("signal"); sig != "" && sig != "SIGTERM" && sig != "TERM" && sig != "15" {
		return 0, statusError(http.StatusBadRequest, "signal %q: bulwarkd stops with SIGTERM, then SIGKILL", sig)
	}
	return timeout, nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	timeout, err := stopTimeout(r, rec)
	if err != nil {
		return err
	}
	if st := s.stateOf(rec, engineCaller(c, rec)); st.status != container.StateRunning && st.status != container.StatePaused {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	if err := s.eng.Stop(rec.ID, engineCaller(c, rec), timeout); err != nil {
		return err
	}
	s.events.publish(rec, events.ActionStop, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	sig, err := signalOf(r.URL.Query().Get("signal"))
	if err != nil {
		return err
	}
	if st := s.stateOf(rec, engineCaller(c, rec)); st.status != container.StateRunning && st.status != container.StatePaused {
		return errdefs.Errorf(errdefs.ErrConflict, "cannot kill container: %s: container %s is not running", rec.Name, rec.ID)
	}
	if err := s.eng.Kill(rec.ID, engineCaller(c, rec), sig, false); err != nil {
		return err
	}
	s.events.publish(rec, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	if boolParam(r, "link") {
		return notImplemented("links")
	}
	if rec.Started {
		err := s.eng.Remove(rec.ID, engineCaller(c, rec), engine.RemoveOptions{Force: boolParam(r, "force"), Volumes: boolParam(r, "v")})
		if errdefs.Class(err) == errdefs.ErrConflict {
			return errdefs.Errorf(errdefs.ErrConflict, "cannot remove container %q: container is running: stop the container before removing or force remove", rec.Name)
		}
		if err != nil && errdefs.Class(err) != errdefs.ErrNotFound {
			return err
		}
	}
	if err := s.recs.remove(rec.ID); err != nil {
		return err
	}
	s.watch.removed(rec.ID)
	s.events.publish(rec, events.ActionDestroy, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerWait(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return statusError(http.StatusBadRequest, "invalid condition: %q", cond)
	}
	wt := s.watch.get(rec.ID)
	if cond == "" || cond == container.WaitConditionNotRunning {
		st := s.stateOf(rec, engineCaller(c, rec))
		// A container that stopped a moment ago may not have its exit recorded yet: its
		// watcher says it.
		known := !rec.Started || st.exit != nil
		if st.status != container.StateRunning && st.status != container.StatePaused && known {
			writeJSON(w, http.StatusOK, container.WaitResponse{StatusCode: int64(st.exitCode())})
			return nil
		}
	}
	// The answer can take as long as the container runs: no read deadline, headers now.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	done := wt.exited
	if cond == container.WaitConditionRemoved {
		done = wt.gone
	}
	select {
	case <-done:
	case <-r.Context().Done():
		return nil
	}
	resp := container.WaitResponse{StatusCode: int64(wt.code())}
	return json.NewEncoder(w).Encode(resp)
}

// readBody reads a request body within the size limit.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Limits.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, statusError(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mbe.Limit)
	}
	if err != nil {
		return nil, statusError(http.StatusBadRequest, "read request body: %v", err)
	}
	return b, nil
}

// drainBody accepts an empty body or an empty JSON object (old clients send one) and nothing else.
func (s *Server) drainBody(w http.ResponseWriter, r *http.Request) error {
	b, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if t := strings.TrimSpace(string(b)); t != "" && t != "{}" && t != "null" {
		return statusError(http.StatusBadRequest, "this endpoint takes no request body")
	}
	return nil
}
