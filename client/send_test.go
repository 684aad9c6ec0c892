package client

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/client/op"
)

// TestSendStatuses: a command sent through bulwarkd ends with the status the same command has
// run locally — stop of several containers prints those stopped and the failures, and ends with
// 1 if any failed; a failure of one command keeps its class; a name that is no command fails.
func TestSendStatuses(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/containers/up/stop"):
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/stop"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"no such container"}`))
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var out, errOut bytes.Buffer
	err = c.Send(ctx, &op.Op{Command: op.Stop, IDs: []string{"up", "gone"}}, nil, &out, &errOut)
	var st *ExitStatus
	if !errors.As(err, &st) || st.Code != 1 || st.Error() != "" {
		t.Errorf("stop of one container that fails: %v, want status 1 and nothing more to print", err)
	}
	if out.String() != "up\n" || !strings.Contains(errOut.String(), "gone: no such container") {
		t.Errorf("stop printed %q and %q", out.String(), errOut.String())
	}

	out.Reset()
	if err := c.Send(ctx, &op.Op{Command: op.Stop, IDs: []string{"up"}}, nil, &out, &errOut); err != nil || out.String() != "up\n" {
		t.Errorf("stop: %v, printed %q", err, out.String())
	}

	if err := c.Send(ctx, &op.Op{Command: op.Logs, IDs: []string{"gone"}}, nil, &out, &errOut); errors.As(err, &st) || err == nil {
		t.Errorf("logs that fail: %v, want the failure itself", err)
	}

	if err := c.Send(ctx, &op.Op{Command: "top"}, nil, &out, &errOut); err == nil || errors.As(err, &st) {
		t.Errorf("no such command: %v", err)
	}
}
