package engine

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]RestartPolicy{
		"": {}, "no": {Name: "no"}, "always": {Name: "always"}, "unless-stopped": {Name: "unless-stopped"},
		"on-failure": {Name: "on-failure"}, "on-failure:2": {Name: "on-failure", MaxRetries: 2},
	} {
		if got, err := ParseRestartPolicy(in); err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"sometimes", "on-failure:x", "on-failure:-1", "always:3"} {
		if _, err := ParseRestartPolicy(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	for _, req := range []Request{{Restart: "always"}, {Restart: "always", Detach: true, Remove: true}} {
		if err := checkRestart(&req); err == nil {
			t.Errorf("%+v accepted", req)
		}
	}
	if err := checkRestart(&Request{Restart: "on-failure:3", Detach: true}); err != nil {
		t.Error(err)
	}
}

// TestRestartDue: which exits a policy restarts, and the back-off.
func TestRestartDue(t *testing.T) {
	root := t.TempDir()
	e := &Engine{cfg: Config{Root: root}}
	os.MkdirAll(e.metaDir("c"), 0o700)
	exit := func(code int, d time.Duration) *ExitInfo { return &ExitInfo{Code: code, Duration: d} }
	for _, tc := range []struct {
		policy  string
		exit    *ExitInfo
		count   int
		want    bool
		delay   time.Duration
		stopped bool
	}{
		{"no", exit(1, 0), 0, false, 0, false},
		{"on-failure", exit(0, 0), 0, false, 0, false},
		{"on-failure", exit(1, 0), 0, true, 100 * time.Millisecond, false},
		{"on-failure", exit(-1, 0), 5, true, 3200 * time.Millisecond, false},
		{"on-failure:2", exit(1, 0), 1, true, 200 * time.Millisecond, false},
		{"on-failure:2", exit(1, 0), 2, false, 0, false},
		{"always", exit(0, 0), 20, true, time.Minute, false},
		{"always", exit(0, time.Minute), 20, true, 100 * time.Millisecond, false},
		{"unless-stopped", exit(0, 0), 0, false, 0, true},
		{"always", nil, 0, false, 0, false},
	} {
		p, _ := ParseRestartPolicy(tc.policy)
		marker := filepath.Join(e.metaDir("c"), "stopped")
		os.Remove(marker)
		if tc.stopped {
			os.WriteFile(marker, nil, 0o600)
		}
		d, ok := e.restartDue(&Meta{ID: "c", Restart: p, Exit: tc.exit, RestartCount: tc.count})
		if ok != tc.want || d != tc.delay {
			t.Errorf("%s after %+v (%d restarts, stopped %v): %v %v, want %v %v", tc.policy, tc.exit, tc.count, tc.stopped, d, ok, tc.delay, tc.want)
		}
	}
}
