package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/audit"
)

type failing struct{}

func (failing) Append(...audit.Event) ([]audit.Record, error) { return nil, errors.New("disk full") }

func TestExposition(t *testing.T) {
	m := New()
	m.Containers(func() []ContainerCount { return []ContainerCount{{Tenant: "alice", State: "running", N: 2}} })
	m.Request("GET /containers/{id}/json", 403, 2*time.Millisecond)
	m.Decision(false, []string{"TENANT_UNKNOWN", "CROSS_TENANT"})
	m.Decision(true, nil)
	if _, err := m.Auditor(failing{}).Append(audit.Event{}); err == nil {
		t.Fatal("the timed auditor hid an error")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	text := string(b)
	for _, want := range []string{
		`bulwarkd_http_requests_total{code="403",endpoint="GET /containers/{id}/json"} 1`,
		`bulwarkd_http_request_duration_seconds_count{endpoint="GET /containers/{id}/json"} 1`,
		`bulwarkd_api_decisions_total{code="CROSS_TENANT,TENANT_UNKNOWN",result="deny"} 1`,
		`bulwarkd_api_decisions_total{code="",result="allow"} 1`,
		`bulwarkd_containers{state="running",tenant="alice"} 2`,
		`bulwarkd_audit_append_duration_seconds_count 1`,
		`bulwarkd_audit_append_errors_total 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %s", want)
		}
	}
}
