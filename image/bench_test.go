package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// benchSource is the tree the benchmark layer is made of (many small files, like a real image).
func benchSource() string {
	if s := os.Getenv("BULWARK_BENCH_SRC"); s != "" {
		return s
	}
	return "/usr/local/go/src"
}

// BenchmarkUnpackVsTar measures verified unpacking (sha256 of the blob and of the diff_id while
// extracting, with every path resolved safely) against the plain baseline `sha256sum LAYER &&
// tar -xf LAYER` on the same layer, interleaved, and reports the throughput ratio.
// Run: go test -run '^$' -bench UnpackVsTar -benchtime 3x ./image/
func BenchmarkUnpackVsTar(b *testing.B) {
	for _, gz := range []bool{false, true} {
		name := "tar"
		if gz {
			name = "tar.gz"
		}
		b.Run(name, func(b *testing.B) { benchUnpack(b, gz) })
	}
}

func benchUnpack(b *testing.B, gz bool) {
	src := benchSource()
	if _, err := os.Stat(src); err != nil {
		b.Skip("no benchmark source tree", src)
	}
	dir := b.TempDir()
	layer := filepath.Join(dir, "layer.tar")
	args := []string{"-C", src, "-cf", layer, "."}
	if gz {
		layer += ".gz"
		args = []string{"-C", src, "-czf", layer, "."}
	}
	if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
		b.Fatalf("make layer: %v %s", err, out)
	}
	st, _ := os.Stat(layer)
	root := filepath.Join(dir, "root")
	s, err := Open(root)
	if err != nil {
		b.Fatal(err)
	}
	desc, err := s.Import(layer, "bench/layer:1")
	if err != nil {
		b.Fatal(err)
	}
	var ours, base []time.Duration
	b.SetBytes(st.Size())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.RemoveAll(filepath.Join(root, "layers"))
		s, _ = Open(root)
		b.StartTimer()
		t0 := time.Now()
		if _, err := s.Unpack(desc, UnpackOptions{}); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(t0))
		b.StopTimer()
		out := filepath.Join(dir, "baseline")
		os.RemoveAll(out)
		os.Mkdir(out, 0o755)
		t0 = time.Now()
		cmd := exec.Command("sh", "-c", `sha256sum "$1" >/dev/null && tar -xf "$1" -C "$2"`, "sh", layer, out)
		if o, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("baseline: %v %s", err, o)
		}
		base = append(base, time.Since(t0))
		b.StartTimer()
	}
	b.StopTimer()
	mo, mb := median(ours), median(base)
	b.ReportMetric(float64(st.Size())/mo.Seconds()/1e6, "MB/s-bulwark")
	b.ReportMetric(float64(st.Size())/mb.Seconds()/1e6, "MB/s-baseline")
	b.ReportMetric(mb.Seconds()/mo.Seconds()*100, "%-of-baseline")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
