package daemon

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// Reads of running containers: stats (one sample), top (its processes, seen from the host) and
// events (the daemon's own, each delivered only to the tenant whose container it concerns).

func (s *Server) containerStats(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	if r.URL.Query().Get("stream") != "0" && !boolParam(r, "one-shot") && r.URL.Query().Get("stream") != "false" {
		return notImplemented("streamed stats (use --no-stream)")
	}
	resp := container.StatsResponse{ID: rec.ID, Name: "/" + rec.Name, OSType: "linux", Read: time.Now().UTC()}
	if st := s.stateOf(rec, engineCaller(c, rec)); st.status == container.StateRunning || st.status == container.StatePaused {
		st, err := s.eng.Stats(rec.ID, engineCaller(c, rec))
		if err != nil {
			return err
		}
		resp.CPUStats = container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: st.CPUUsageNs}}
		resp.MemoryStats = container.MemoryStats{Usage: st.MemoryUsage, MaxUsage: st.MemoryPeak, Limit: st.MemoryLimit, Failcnt: st.OOMKills}
		resp.PidsStats = container.PidsStats{Current: st.PidsCurrent, Limit: st.PidsLimit}
		resp.NumProcs = uint32(st.PidsCurrent)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	if a := r.URL.Query().Get("ps_args"); a != "" && a != "-ef" {
		return notImplemented("top with ps arguments other than -ef")
	}
	st := s.stateOf(rec, engineCaller(c, rec))
	if st.status != container.StateRunning && st.status != container.StatePaused {
		return statusError(http.StatusConflict, "container %s is not running", rec.ID)
	}
	procs, err := namespaceProcesses(st.pid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, container.TopResponse{Titles: []string{"UID", "PID", "PPID", "CMD"}, Processes: procs})
	return nil
}

// namespaceProcesses lists the processes in init's PID namespace (uid and pids as the host
// sees them, as docker top shows them).
func namespaceProcesses(init int) ([][]string, error) {
	ns, err := os.Readlink("/proc/" + strconv.Itoa(init) + "/ns/pid")
	if err != nil {
		return nil, statusError(http.StatusConflict, "container is not running: %v", err)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out [][]string
	for _, d := range dirs {
		if l, err := os.Readlink(d + "/ns/pid"); err != nil || l != ns {
			continue
		}
		pid := filepath.Base(d)
		ppid, uid := "", ""
		status, _ := os.ReadFile(d + "/status")
		for _, line := range strings.Split(string(status), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 2 && f[0] == "PPid:":
				ppid = f[1]
			case len(f) >= 2 && f[0] == "Uid:":
				uid = f[1]
			}
		}
		cmd, _ := os.ReadFile(d + "/cmdline")
		out = append(out, []string{uid, pid, ppid, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))})
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i][1])
		b, _ := strconv.Atoi(out[j][1])
		return a < b
	})
	return out, nil
}

// eventHub fans the daemon's events out to the subscribed clients of the tenant they concern.
type eventHub struct {
	mu   sync.Mutex                     // guards subs
	subs map[chan events.Message]string // channel → tenant
}

func (h *eventHub) subscribe(tenant string) chan events.Message {
	ch := make(chan events.Message, 256)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan events.Message]string{}
	}
	h.subs[ch] = tenant
	return ch
}

func (h *eventHub) unsubscribe(ch chan events.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, ch)
}

// publish sends an event about rec's container to its tenant's subscribers; a subscriber that
// does not keep up loses events rather than slowing the daemon.
func (h *eventHub) publish(rec *record, action events.Action, attrs map[string]string) {
	now := time.Now()
	a := map[string]string{"name": rec.Name, "image": rec.Request.Image}
	for k, v := range attrs {
		a[k] = v
	}
	m := events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{ID: rec.ID, Attributes: a},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch, tenant := range h.subs {
		if tenant != rec.Tenant {
			continue
		}
		select {
		case ch <- m:
		default:
		}
	}
}

func (s *Server) eventsStream(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	if q.Get("since") != "" || q.Get("until") != "" {
		return notImplemented("past events (--since, --until): events are live only")
	}
	if f := q.Get("filters"); f != "" && f != "{}" {
		return notImplemented("event filters")
	}
	ch := s.events.subscribe(c.who.Tenant)
	defer s.events.unsubscribe(ch)
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-s.watch.quit:
			return nil
		case m := <-ch:
			if err := enc.Encode(m); err != nil {
				return nil
			}
			rc.Flush()
		}
	}
}
