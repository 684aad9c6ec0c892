package docker

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
)

// A Docker Engine API peer on a unix socket, answering as dockerd does for one running and one
// exited container.
func TestRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`[{"Id":"aaa","Names":["/web"]},{"Id":"bbb","Names":["/done"]}]`))
	})
	mux.HandleFunc("GET /containers/aaa/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"Id":"aaa","Name":"/web","State":{"Running":true,"Pid":4242}}`))
	})
	mux.HandleFunc("GET /containers/bbb/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"Id":"bbb","Name":"/done","State":{"Running":false,"Pid":0}}`))
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	cs, err := Running(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Name != "/web" || cs[0].Pid != 4242 {
		t.Fatalf("%+v", cs)
	}
	if _, err := Running(context.Background(), filepath.Join(t.TempDir(), "none.sock")); err == nil {
		t.Fatal("a missing socket listed containers")
	}
}
