package daemon

import (
	"testing"
	"time"
)

// An auto-remove waits until the clients attached to the container have read its log.
func TestWatchIdleWaitsForAttachedStreams(t *testing.T) {
	ws := newWatchers(&Server{})
	select {
	case <-ws.get("c").idle():
	default:
		t.Fatal("no stream attached, yet not idle")
	}
	done1, done2 := ws.attached("c"), ws.attached("c")
	idle := ws.get("c").idle()
	done1()
	select {
	case <-idle:
		t.Fatal("idle with a stream still attached")
	case <-time.After(10 * time.Millisecond):
	}
	done2()
	select {
	case <-idle:
	case <-time.After(time.Minute):
		t.Fatal("not idle once every stream ended")
	}
}
