package daemon

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"bulwark.dev/bulwark/daemon/metrics"
	"bulwark.dev/bulwark/engine"
)

// Every API request is measured under its route's pattern ("GET /containers/{id}/json"), which
// the router names once it has matched (setRoute); a path no route serves is "unimplemented",
// one refused before routing (a bad API version) "invalid".

type routeKey struct{}

// reqInfo is what the router tells the measuring wrapper about a request.
type reqInfo struct{ route string }

// setRoute names the route a request matched.
func setRoute(ctx context.Context, pattern string) {
	if ri, ok := ctx.Value(routeKey{}).(*reqInfo); ok {
		ri.route = pattern
	}
}

// instrument measures every request h serves and tracks its streams (shutdown cuts them).
func (s *Server) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &reqInfo{route: "invalid"}
		ctx, cancel := context.WithCancel(context.WithValue(r.Context(), routeKey{}, ri))
		defer cancel()
		sw := &statusWriter{ResponseWriter: w, streams: &s.streams, cancel: cancel}
		defer sw.done()
		start := time.Now()
		h.ServeHTTP(sw, r.WithContext(ctx))
		s.metrics.Request(ri.route, sw.code(), time.Since(start))
	})
}

// A stream is a request whose handler has flushed its response and goes on (logs -f, events,
// wait, streamed stats) or has hijacked its connection (attach, exec): it has no end of its
// own, so a shutdown cuts it at once instead of waiting for it (requests in flight get the
// shutdown timeout). A hijacked connection is closed too: the server does not track it.
type streams struct {
	mu      sync.Mutex // guards closing and open
	closing bool
	open    map[*statusWriter]struct{}
}

// add registers w as a stream; once the daemon is shutting down, w is cut at once.
func (st *streams) add(w *statusWriter) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closing {
		w.cut()
		return
	}
	if st.open == nil {
		st.open = map[*statusWriter]struct{}{}
	}
	st.open[w] = struct{}{}
}

func (st *streams) remove(w *statusWriter) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.open, w)
}

// closeAll cuts every stream, and every one that starts from now on.
func (st *streams) closeAll() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closing = true
	for w := range st.open {
		w.cut()
	}
	return len(st.open)
}

// containerCounts counts the daemon's containers by tenant and state (scraped).
func (s *Server) containerCounts() []metrics.ContainerCount {
	type key struct{ tenant, state string }
	n := map[key]int{}
	for _, rec := range s.recs.all() {
		st := s.stateOf(rec, ownerCaller(rec))
		n[key{rec.Tenant, string(st.status)}]++
	}
	out := make([]metrics.ContainerCount, 0, len(n))
	for k, v := range n {
		out = append(out, metrics.ContainerCount{Tenant: k.tenant, State: k.state, N: v})
	}
	return out
}

// ownerCaller reads a record's container as its owner.
func ownerCaller(rec *record) engine.Caller {
	return engine.Caller{Identity: engine.Identity{UID: rec.UID, Principal: "bulwarkd"}, Tenant: rec.Tenant}
}

// statusWriter remembers the status a handler answered with (a hijacked connection counts as
// 101: Docker's attach and exec streams) and registers the request as a stream when it
// flushes or hijacks.
type statusWriter struct {
	http.ResponseWriter
	status  int
	streams *streams
	cancel  context.CancelFunc
	stream  bool     // registered in streams (set by the handler's goroutine only)
	conn    net.Conn // the hijacked connection; written once, before registration
}

func (w *statusWriter) register() {
	if !w.stream {
		w.stream = true
		w.streams.add(w)
	}
}

// cut ends the stream: its context, and its connection if hijacked.
func (w *statusWriter) cut() {
	w.cancel()
	if w.conn != nil {
		w.conn.Close()
	}
}

func (w *statusWriter) done() {
	if w.stream {
		w.streams.remove(w)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
	w.register()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.conn = conn
		w.register()
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
