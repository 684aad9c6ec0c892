package daemon

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// Malformed, unknown, oversized and slow requests get clear errors (Docker's error document)
// and the daemon keeps serving.
func TestBadInput(t *testing.T) {
	e := startDaemon(t, map[string]any{"limits": map[string]any{"max_body_bytes": 65536, "read_header_timeout": "2s"}})
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		msg                      string
	}{
		{"malformed JSON", "POST", "/v1.50/containers/create", `{"Image": "busybox:1",`, 400, "malformed request body"},
		{"unknown field", "POST", "/v1.50/containers/create", `{"Image": "busybox:1", "Bogus": 1}`, 400, `unknown field \"Bogus\"`},
		{"two documents", "POST", "/v1.50/containers/create", `{"Image": "busybox:1"} {}`, 400, "more than one JSON document"},
		{"empty body", "POST", "/v1.50/containers/create", ``, 400, "request body is empty"},
		{"huge body", "POST", "/v1.50/containers/create", `{"Image": "` + strings.Repeat("a", 200000) + `"}`, 413, "larger than 65536 bytes"},
		{"unhonoured field", "POST", "/v1.50/containers/create", `{"Image": "busybox:1", "Healthcheck": {"Test": ["CMD", "true"]}}`, 400, "cannot honour Healthcheck"},
		{"unimplemented", "POST", "/v1.50/build", `{}`, 501, "does not implement POST /build"},
		{"too new", "GET", "/v9.99/version", ``, 400, "client version 9.99 is too new"},
		{"too old", "GET", "/v1.12/version", ``, 400, "is too old"},
		{"no such container", "GET", "/v1.50/containers/nothere/json", ``, 404, "No such container: nothere"},
	} {
		status, body := e.raw(t, tc.method, tc.path, strings.NewReader(tc.body))
		if status != tc.status || !strings.Contains(body, `"message":`) || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: got %d %s, want %d with %q", tc.name, status, body, tc.status, tc.msg)
		}
	}
	// A client that never finishes its headers is cut off (read_header_timeout) and holds nothing.
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("GET /_ping HTTP/1.1\r\nHost: x\r\n"))
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Error("a request with unfinished headers was answered")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the daemon kept a client with unfinished headers for two minutes")
	}
	// Still serving.
	if status, body := e.raw(t, "GET", "/_ping", nil); status != 200 || body != "OK" {
		t.Errorf("ping after bad input: %d %q", status, body)
	}
	if status, _ := e.raw(t, "HEAD", "/_ping", nil); status != 200 {
		t.Errorf("HEAD ping: %d", status)
	}
}
