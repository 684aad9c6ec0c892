package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrape reads the metrics served on sock.
func scrape(t *testing.T, sock string) string {
	t.Helper()
	c := http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://metrics/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", sock, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v\n%s", sock, resp.StatusCode, err, b)
	}
	return string(b)
}

// sample is the value of the series whose name and labels are exactly series ("name{a="x",b="y"}",
// labels sorted as Prometheus writes them); 0 when absent.
func sample(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return 0
}

// Metrics on their own socket (root only without metrics_socket_group): requests by route
// pattern (never a raw path: no container id in any series), status and latency; API decisions
// by result and code, a refused cross-tenant call counted as deny/CROSS_TENANT; containers by
// tenant and state; audit append latency.
func TestMetrics(t *testing.T) {
	e := startDaemon(t, nil)
	msock := filepath.Join(e.dir, "metrics.sock")
	e.term(t)
	editJSON(t, e.cfgPath, func(cfg map[string]any) { cfg["metrics_socket"] = msock })
	e.start(t)

	fi, err := os.Stat(msock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("metrics socket: mode %v, owner %d:%d; want a socket 0660 root:root", fi.Mode(), st.Uid, st.Gid)
	}
	a, b := e.alice, e.bob
	id := strings.TrimSpace(e.mustDocker(t, a, "run", "-d", "--name", "m", "busybox:1", "sleep", "300"))
	e.mustDocker(t, a, "ps")
	before := scrape(t, msock)
	denyCross := `bulwarkd_api_decisions_total{code="CROSS_TENANT",result="deny"}`
	if _, err := e.docker(t, b, "container", "inspect", id); err == nil {
		t.Fatal("bob inspected alice's container")
	}
	text := scrape(t, msock)
	if d := sample(t, text, denyCross) - sample(t, before, denyCross); d != 1 {
		t.Errorf("%s grew by %v after one refused call, want 1", denyCross, d)
	}
	for _, series := range []string{
		`bulwarkd_http_requests_total{code="200",endpoint="GET /containers/json"}`,
		// Another tenant's container answers as an unknown one (its existence is not revealed).
		`bulwarkd_http_requests_total{code="404",endpoint="GET /containers/{id}/json"}`,
		`bulwarkd_http_requests_total{code="201",endpoint="POST /containers/create"}`,
		`bulwarkd_http_request_duration_seconds_count{endpoint="GET /containers/json"}`,
		`bulwarkd_api_decisions_total{code="",result="allow"}`,
		`bulwarkd_containers{state="running",tenant="` + a.name + `"}`,
		`bulwarkd_audit_append_duration_seconds_count`,
		`go_goroutines`,
		`process_open_fds`,
	} {
		if sample(t, text, series) <= 0 {
			t.Errorf("no positive sample %s", series)
		}
	}
	if strings.Contains(text, id[:12]) {
		t.Errorf("a container id appears in the metrics (raw paths as labels?)")
	}
	if m := regexp.MustCompile(`endpoint="[^"]*[0-9a-f]{12}`).FindString(text); m != "" {
		t.Errorf("an endpoint label holds an id: %s", m)
	}
	e.mustDocker(t, a, "rm", "-f", id)
}
