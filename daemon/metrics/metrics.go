// Package metrics is bulwarkd's Prometheus metrics: API requests by endpoint (the route's
// pattern, never the raw path: ids and names would make a series per container), status and
// latency; API policy decisions by result and reason codes; containers by tenant and state;
// audit append latency; and the Go runtime's and the process's own (goroutines, descriptors,
// memory). They are served on their own socket, apart from the API.
package metrics

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"bulwark.dev/bulwark/audit"
)

// Namespace prefixes every metric's name.
const Namespace = "bulwarkd"

// ContainerCount is how many containers of a tenant are in a state.
type ContainerCount struct {
	Tenant, State string
	N             int
}

// Metrics holds the daemon's collectors. They always count (it costs a few atomic adds per
// request); they are served only when a metrics socket is configured or passed.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	decisions   *prometheus.CounterVec
	auditAppend prometheus.Histogram
	auditErrors prometheus.Counter
}

// New registers the collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
			Help: "API requests by endpoint (route pattern) and status code."}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "API request latency by endpoint (route pattern); a stream counts until it ends.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"endpoint"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "api_decisions_total",
			Help: "API policy decisions by result (allow, deny) and reason codes (comma-separated, sorted)."}, []string{"result", "code"}),
		auditAppend: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "audit_append_duration_seconds",
			Help: "Latency of one durable append to the audit log (one fsync per batch).", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: "audit_append_errors_total",
			Help: "Audit appends that failed."}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.decisions, m.auditAppend, m.auditErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Containers registers the count of containers by tenant and state, asked at each scrape.
func (m *Metrics) Containers(count func() []ContainerCount) {
	m.reg.MustRegister(&containerCollector{count: count, desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "containers"),
		"Containers by tenant and state.", []string{"tenant", "state"}, nil)})
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Request records one API request.
func (m *Metrics) Request(endpoint string, status int, d time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(d.Seconds())
}

// Decision records one API policy decision.
func (m *Metrics) Decision(allow bool, codes []string) {
	result := "deny"
	if allow {
		result = "allow"
	}
	codes = append([]string(nil), codes...)
	sort.Strings(codes)
	m.decisions.WithLabelValues(result, strings.Join(codes, ",")).Inc()
}

// Appender is an audit log (the engine's Auditor).
type Appender interface {
	Append(events ...audit.Event) ([]audit.Record, error)
}

// Auditor times every append to a.
func (m *Metrics) Auditor(a Appender) Appender {
	return &timedAuditor{a: a, m: m}
}

type timedAuditor struct {
	a Appender
	m *Metrics
}

func (t *timedAuditor) Append(events ...audit.Event) ([]audit.Record, error) {
	start := time.Now()
	recs, err := t.a.Append(events...)
	t.m.auditAppend.Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.auditErrors.Inc()
	}
	return recs, err
}

// containerCollector counts containers at scrape time (the daemon's records are the truth).
type containerCollector struct {
	count func() []ContainerCount
	desc  *prometheus.Desc
}

func (c *containerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *containerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.count() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n.N), n.Tenant, n.State)
	}
}
