package daemon

import (
	"slices"
	"testing"
	"time"

	"bulwark.dev/bulwark/daemon/config"
)

func TestRestartKeys(t *testing.T) {
	cur := config.Default()
	next := config.Default()
	next.Tenants = map[string]config.Tenant{"alice": {UIDs: []int{1000}}}
	next.OperatorCertNames = []string{"ops"}
	if got, err := restartKeys(cur, next); err != nil || len(got) != 0 {
		t.Fatalf("tenant map only: %q %v", got, err)
	}
	next.Socket = "/run/other.sock"
	next.Limits.IdleTimeout = config.Duration{Duration: time.Minute}
	next.TCP = &config.TCP{Address: "127.0.0.1:1"}
	if got, err := restartKeys(cur, next); err != nil || !slices.Equal(got, []string{"limits", "socket", "tcp"}) {
		t.Fatalf("restart keys: %q %v", got, err)
	}
}
