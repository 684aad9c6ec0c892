package volume

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeFile writes n bytes to p in 1 MiB writes and fsyncs it: the time data takes to reach the
// disk.
func writeFile(b *testing.B, p string, n int) time.Duration {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	start := time.Now()
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	for w := 0; w < n; w += len(buf) {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	f.Close()
	os.Remove(p)
	return d
}

// BenchmarkQuotaWrite (issue 12, a benchmark, not a test; goal ≥ 0.9): write throughput into a
// size-limited volume (its loop-mounted ext4 image) against a plain directory on the same
// disk, 64 MiB written and fsynced per iteration to each, alternating; reported as the ratio
// quota/plain of their throughputs and each in MB/s.
//
//	go test -run '^$' -bench QuotaWrite -benchtime 10x ./volume/
func BenchmarkQuotaWrite(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (loop devices, mounts)")
	}
	root, err := filepath.EvalSymlinks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	s, err := Open(root)
	if err != nil {
		b.Fatal(err)
	}
	v, _, err := s.Create("bench", "q", Options{Size: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Remove("bench", "q", never) })
	plain := filepath.Join(root, "plain")
	if err := os.Mkdir(plain, 0o700); err != nil {
		b.Fatal(err)
	}
	const n = 64 << 20
	var tq, tp time.Duration
	b.SetBytes(2 * n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tp += writeFile(b, filepath.Join(plain, "f"), n)
		tq += writeFile(b, filepath.Join(v.Mountpoint, "f"), n)
	}
	b.StopTimer()
	mbs := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbs(tq)/mbs(tp), "quota/plain")
	b.ReportMetric(mbs(tq), "quota-MB/s")
	b.ReportMetric(mbs(tp), "plain-MB/s")
}
