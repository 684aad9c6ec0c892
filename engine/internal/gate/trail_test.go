package gate

import (
	"errors"
	"sync"
	"testing"

	"bulwark.dev/bulwark/audit"
)

// appender records the events appended and fails with err.
type appender struct {
	mu  sync.Mutex
	evs []audit.Event
	err error
}

func (a *appender) Append(evs ...audit.Event) ([]audit.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evs = append(a.evs, evs...)
	return nil, a.err
}

// The next asynchronous flush is handed to the runner SetAsync names, and WaitAsync waits for it
// and reports its error as for a flush on its own goroutine; a later flush starts its own.
func TestFlushAsyncThroughRunner(t *testing.T) {
	for _, fail := range []error{nil, errors.New("disk full")} {
		log := &appender{err: fail}
		tr := NewTrail(log, audit.Actor{}, "default", "r1")
		jobs := make(chan func(), 1)
		done := make(chan struct{})
		go func() {
			if job, ok := <-jobs; ok {
				job()
			}
			close(done)
		}()
		handed := 0
		tr.SetAsync(func(append func()) { handed++; jobs <- append })
		tr.Add(audit.TypeEngine, "request", nil)
		tr.FlushAsync()
		if err := tr.WaitAsync(); !errors.Is(err, fail) {
			t.Errorf("WaitAsync = %v, want %v", err, fail)
		}
		<-done
		tr.Add(audit.TypeEngine, "later", nil)
		tr.FlushAsync()
		if err := tr.WaitAsync(); !errors.Is(err, fail) {
			t.Errorf("second WaitAsync = %v, want %v", err, fail)
		}
		if handed != 1 || len(log.evs) != 2 || log.evs[0].Action != "request" || log.evs[0].RequestID != "r1" || log.evs[1].Action != "later" {
			t.Errorf("runner called %d times, appended %+v; want the request event through it and the later one apart", handed, log.evs)
		}
	}
}
