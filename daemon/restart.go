package daemon

import (
	"context"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Starting a container that has run (docker start of an exited container, docker restart) is
// the engine's: it starts the container again from its record, detached under the supervisor,
// with the plan decided when it was created (the API policy decides the start or restart).

// containerRestart is docker restart: stop (SIGTERM, then SIGKILL after t) and start again; a
// container that is not running is just started.
func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.drainBody(w, r); err != nil {
		return err
	}
	rec := c.target
	timeout, err := stopTimeout(r, rec)
	if err != nil {
		return err
	}
	if !rec.Started {
		return s.containerStart(w, r, c)
	}
	var stop func() error
	if st := s.stateOf(rec, engineCaller(c, rec)); st.status == container.StateRunning || st.status == container.StatePaused {
		stop = func() error {
			if err := s.eng.Stop(rec.ID, engineCaller(c, rec), timeout); err != nil {
				return err
			}
			s.events.publish(rec, events.ActionStop, nil)
			return nil
		}
	}
	if err := s.startAgain(r.Context(), c, stop); err != nil {
		return err
	}
	s.events.publish(rec, events.ActionRestart, nil)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startAgain starts c's container, which has run, once more (after stop, when not nil), and
// follows the new run.
func (s *Server) startAgain(ctx context.Context, c *call, stop func() error) error {
	rec := c.target
	// The exit of the last run is recorded first; a stop cannot take longer than its timeout
	// and the supervisor's recording of the exit.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err := s.watch.again(ctx, rec.ID, stop, func() error {
		return s.reaped(func() error { return s.eng.StartContainer(rec.ID, engineCaller(c, rec)) })
	})
	if err != nil {
		return err
	}
	rec, err = s.recs.update(rec.ID, func(r *record) { r.Exit, r.Started = nil, true })
	if err != nil {
		return err
	}
	s.watch.start(rec)
	s.events.publish(rec, events.ActionStart, nil)
	return nil
}
