package engine

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/internal/runroot"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/sandbox/seccompc"
	"bulwark.dev/bulwark/signing"
)

// TestMain lets the sandbox re-execute this test binary as a container's init.
func TestMain(m *testing.M) {
	sandbox.Init()
	// This test binary is the runtime: it compiles seccomp profiles itself, without
	// bulwark-seccomp beside it.
	sandbox.CompileSeccompInProcess(seccompc.Compile)
	os.Exit(runTests(m))
}

// runTests runs the tests with the engines' run roots in a temporary directory, never under the
// host's /run/bulwark.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "bulwark-run-roots-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Setenv(runroot.BaseEnv, dir)
	return m.Run()
}

// discard is an Auditor that keeps nothing: the baseline of the audit overhead benchmark.
type discard struct{}

func (discard) Append(evs ...audit.Event) ([]audit.Record, error) { return nil, nil }

// signedRoot makes a state root with busybox:1 imported from a rootfs tar and signed.
func signedRoot(tb testing.TB) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("running sandboxes needs root")
	}
	bb, err := os.ReadFile("/usr/bin/busybox")
	if err != nil {
		tb.Skipf("busybox-static missing: %v", err)
	}
	dir := tb.TempDir()
	tarPath := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		tb.Fatal(err)
	}
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	tw.WriteHeader(&tar.Header{Name: "bin/true", Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	root := filepath.Join(dir, "state")
	e, err := Open(Config{Root: root, Policies: inProcess(tb), Trust: signing.Resolver{}, Audit: discard{}})
	if err != nil {
		tb.Fatal(err)
	}
	desc, err := e.Store().Import(tarPath, "busybox:1")
	if err != nil {
		tb.Fatal(err)
	}
	trust := filepath.Join(root, "trust")
	repo := signing.NewRepo(trust)
	if err := repo.Init(signing.InitOptions{}); err != nil {
		tb.Fatal(err)
	}
	sign(tb, root, "busybox:1", desc.Digest, desc.Size, desc.MediaType)
	pinned, err := os.ReadFile(filepath.Join(repo.Dir, "1.root.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := signing.Pin(trust, repo.Dir, pinned); err != nil {
		tb.Fatal(err)
	}
	return root
}

func sign(tb testing.TB, root, ref string, d digest.Digest, size int64, mediaType string) {
	tb.Helper()
	repo := signing.NewRepo(filepath.Join(root, "trust"))
	if err := repo.Sign(signing.Target{Name: ref, Digest: d, Length: size, MediaType: mediaType}, signing.SignOptions{}); err != nil {
		tb.Fatal(err)
	}
}

// runOnce runs `true` and returns how long it was blocked on audit appends.
func runOnce(tb testing.TB, e *Engine, name string) time.Duration {
	tb.Helper()
	plan, err := e.Prepare(context.Background(), &Request{Image: "busybox:1", Args: []string{"true"}, Name: name, Remove: true})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := e.Start(context.Background(), plan, sandbox.IO{})
	if err != nil {
		tb.Fatal(err)
	}
	info, err := r.Wait()
	if err != nil || info.Code != 0 {
		tb.Fatalf("wait: %v, %+v", err, info)
	}
	return r.AuditWait()
}

func TestRunInProcess(t *testing.T) {
	root := signedRoot(t)
	e, err := Open(Config{Root: root, Policies: inProcess(t), Trust: signing.Resolver{}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	runOnce(t, e, "inproc")
	if _, err := audit.Verify(filepath.Join(root, "audit"), nil); err != nil {
		t.Fatal(err)
	}
	recs, err := audit.Query(filepath.Join(root, "audit"), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Type+"."+r.Action)
	}
	// The sandbox may add events of its own (e.g. a raise) between these.
	want := []string{"engine.request", "engine.identity", "trust.resolve", "image.verify", "policy.decision",
		"container.floor.raises", "container.create", "container.start", "container.exit", "container.delete"}
	i := 0
	for _, a := range got {
		if i < len(want) && a == want[i] {
			i++
		}
	}
	if i != len(want) {
		t.Errorf("audit story %v lacks %v in order", got, want[i:])
	}
	// The sandbox creates the floor result policy decided on: its create record counts the
	// decided raises, and none of them is recorded a second time.
	var decided string
	for _, r := range recs {
		switch r.Type + "." + r.Action {
		case "container.floor.raises":
			decided = r.Attrs["count"]
		case "container.raise":
			t.Errorf("a raise recorded again at create: %v", r.Attrs)
		case "container.create":
			if decided == "" || r.Attrs["raises"] != decided {
				t.Errorf("create record counts %s raises, the decision %s", r.Attrs["raises"], decided)
			}
		}
	}
}

// BenchmarkRun measures start-to-exit of `true` through the whole engine, alternating runs with
// the audit log and with a discarding auditor. It reports both medians and the time an audited
// run was blocked on audit appends (its critical-path share; appends overlapping the sandbox's
// own work do not count) as a percentage of the audited run.
func BenchmarkRun(b *testing.B) {
	root := signedRoot(b)
	audited, err := Open(Config{Root: root, Policies: inProcess(b), Trust: signing.Resolver{}})
	if err != nil {
		b.Fatal(err)
	}
	defer audited.Close()
	plain, err := Open(Config{Root: root, Policies: inProcess(b), Trust: signing.Resolver{}, Audit: discard{}})
	if err != nil {
		b.Fatal(err)
	}
	// Warm: policy prepared, layers unpacked, seccomp compiled.
	runOnce(b, audited, "warm-audit")
	runOnce(b, plain, "warm-plain")
	var withAudit, without, waited []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		order := []*Engine{audited, plain}
		if i%2 == 1 {
			order = []*Engine{plain, audited}
		}
		for _, e := range order {
			start := time.Now()
			w := runOnce(b, e, "")
			if e == audited {
				withAudit = append(withAudit, time.Since(start))
				waited = append(waited, w)
			} else {
				without = append(without, time.Since(start))
			}
		}
	}
	b.StopTimer()
	med := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	b.ReportMetric(float64(med(withAudit).Microseconds()), "µs/run-audited")
	b.ReportMetric(float64(med(without).Microseconds()), "µs/run-unaudited")
	b.ReportMetric(float64(med(waited).Microseconds()), "µs-audit-wait/run")
	b.ReportMetric(100*float64(med(waited))/float64(med(withAudit)), "%audit")
}
