package signing

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// BenchmarkResolveWarm is a TUF refresh over HTTP on loopback plus a target lookup with a warm
// metadata cache: the cost a run pays to turn a reference into a trusted digest. "process" is a
// new Client each time (a CLI invocation: go-tuf re-reads and re-verifies the cached snapshot and
// targets); "client" is a long-lived Client (an engine: unchanged timestamp, no new root, so the
// verified metadata in memory is reused). Sub-benchmarks sign 1 and 200 images (2 targets each).
func BenchmarkResolveWarm(b *testing.B) {
	for _, n := range []int{1, 200} {
		for _, fresh := range []bool{true, false} {
			mode := "client"
			if fresh {
				mode = "process"
			}
			b.Run(fmt.Sprintf("images=%d/%s", n, mode), func(b *testing.B) { benchResolve(b, n, fresh) })
		}
	}
}

func benchResolve(b *testing.B, n int, fresh bool) {
	repo := NewRepo(b.TempDir())
	if err := repo.Init(InitOptions{}); err != nil {
		b.Fatal(err)
	}
	md, _ := repo.LoadTargets("targets")
	for i := 0; i < n; i++ {
		AddTarget(md, target(fmt.Sprintf("demo/app:%d", i), manifest))
	}
	if err := repo.commit(map[string]*metadata.Metadata[metadata.TargetsType]{"targets": md}, nil, false); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(repo.Dir)))
	defer srv.Close()
	root, _ := os.ReadFile(filepath.Join(repo.Dir, "1.root.json"))
	c, err := NewClient(ClientOptions{Root: root, Remote: srv.URL, CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Resolve("demo/app:0"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if fresh {
			c, _ = NewClient(c.o)
		}
		if _, err := c.Resolve("demo/app:0"); err != nil {
			b.Fatal(err)
		}
	}
}
