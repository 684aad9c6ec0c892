package record

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestRemoteFetch: both kinds of repository say "no such file" (the 404 the record's rotation
// check relies on) only when there is none; any other answer, or a file over the limit, is an
// error, which the record takes as a miss.
func TestRemoteFetch(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "timestamp.json"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/repo/timestamp.json":
			w.Write([]byte("0123456789"))
		case "/repo/broken.json":
			http.Error(w, "no", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, remote := range []string{dir, srv.URL + "/repo/"} {
		fetch := RemoteFetch(remote, srv.Client())
		if b, nf, err := fetch("timestamp.json", 16); err != nil || nf || string(b) != "0123456789" {
			t.Errorf("%s: timestamp %q %v %v", remote, b, nf, err)
		}
		if _, nf, err := fetch("timestamp.json", 9); err == nil || nf {
			t.Errorf("%s: a file over the limit: %v %v", remote, nf, err)
		}
		if _, nf, err := fetch("2.root.json", 16); err == nil || !nf {
			t.Errorf("%s: a missing file: not found %v, %v", remote, nf, err)
		}
	}
	if _, nf, err := RemoteFetch(srv.URL+"/repo", srv.Client())("broken.json", 16); err == nil || nf {
		t.Errorf("a server error: not found %v, %v", nf, err)
	}
}

// TestTargetPath: a tag defaults to latest; a registry port is not a tag.
func TestTargetPath(t *testing.T) {
	for in, want := range map[string]string{
		"busybox": "busybox:latest", "busybox:1": "busybox:1", "reg:5000/x": "reg:5000/x:latest",
		"reg:5000/x:2": "reg:5000/x:2", "x@sha256:ab": "x@sha256:ab",
	} {
		if got := TargetPath(in); got != want {
			t.Errorf("TargetPath(%q) = %q, want %q", in, got, want)
		}
	}
}
