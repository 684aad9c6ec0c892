package sandbox

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRunTrue measures create, start+wait (start-to-exit) and delete of /bin/true with the
// full floor, after one warm-up run fills the seccomp compile cache.
func BenchmarkRunTrue(b *testing.B) {
	if testing.Short() {
		b.Skip("creates real sandboxes")
	}
	needRoot(b)
	r, err := New(Options{Root: b.TempDir(), Tenant: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	bundle, spec := busyboxBundle(b)
	var create, run, del time.Duration
	for i := 0; i < b.N+1; i++ {
		id := fmt.Sprintf("bench-%d", i)
		t0 := time.Now()
		c, err := r.Create(id, bundle, spec, IO{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		if code, err := c.Wait(); err != nil || code != 0 {
			b.Fatalf("exit %d %v", code, err)
		}
		t2 := time.Now()
		if err := c.Delete(false); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if i == 0 {
			b.ResetTimer()
			continue
		}
		create += t1.Sub(t0)
		run += t2.Sub(t1)
		del += t3.Sub(t2)
	}
	n := float64(b.N)
	b.ReportMetric(float64(create.Microseconds())/n/1000, "create-ms")
	b.ReportMetric(float64(run.Microseconds())/n/1000, "start-exit-ms")
	b.ReportMetric(float64(del.Microseconds())/n/1000, "delete-ms")
}
