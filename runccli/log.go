package runccli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// logger writes runc-style log lines. containerd's shim passes `--log <bundle>/log.json --log-format
// json` and, when the runtime fails, reports the msg of the last line whose level is "error"; so errors
// must reach this log as one JSON object per line: {"level","msg","time"} (logrus's field names).
type logger struct {
	mu       sync.Mutex // guards out
	out      io.Writer
	json     bool
	debug    bool
	toStderr bool
	mainAt   time.Time // when main began
	steps    []string  // guarded by mu: "name=ns" of every timed step, with debug
	last     time.Time // guarded by mu: when the last timed step ended (mainAt before the first)
	pending  []byte    // guarded by mu: debug lines not written yet (see write)
}

// newLogger opens the log; its step clock (see lap) starts at mainAt, when main began.
func newLogger(path, format string, debug bool, mainAt time.Time) (*logger, error) {
	l := &logger{debug: debug, mainAt: mainAt, last: mainAt}
	switch format {
	case "text", "":
	case "json":
		l.json = true
	default:
		return nil, fmt.Errorf("unknown log format %q: want text or json", format)
	}
	if path == "" || path == "/dev/stderr" {
		l.out, l.toStderr = os.Stderr, true
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log file %s: %w", path, err)
	}
	l.out = f
	return l, nil
}

// Error logs at level error.
func (l *logger) Error(msg string) { l.write("error", msg) }

// Warn logs at level warning (what runc uses for a failed poststart or poststop hook).
func (l *logger) Warn(msg string) { l.write("warning", msg) }

// Info logs at level info.
func (l *logger) Info(msg string) { l.write("info", msg) }

// Debugf logs at level debug when --debug is set.
func (l *logger) Debugf(format string, args ...any) {
	if l.debug {
		l.write("debug", fmt.Sprintf(format, args...))
	}
}

func (l *logger) write(level, msg string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	var line []byte
	if l.json {
		b, err := json.Marshal(struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Time  string `json:"time"`
		}{level, msg, now})
		if err != nil {
			return
		}
		line = append(b, '\n')
	} else {
		line = fmt.Appendf(nil, "time=%q level=%s msg=%s\n", now, level, strconv.Quote(msg))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if level == "debug" {
		// The log is O_SYNC, as runc's: a write per debug line (a run's create alone reports two
		// dozen events, one per raise) cost 5-10 us each on tmpfs and 0.3-0.5 ms on ext4, in
		// the steps --debug times. Debug lines wait for the next other line, a wait on the
		// container (flush) or the command's end, in their order.
		l.pending = append(l.pending, line...)
		return
	}
	l.writeLocked(line)
}

// flush writes the debug lines not written yet.
func (l *logger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeLocked(nil)
}

// writeLocked writes the pending debug lines, then line; l.mu is held.
func (l *logger) writeLocked(line []byte) {
	if len(l.pending) > 0 {
		line = append(l.pending, line...)
		l.pending = nil
	}
	if len(line) > 0 {
		// A log that cannot be written must not turn a successful operation into a failure.
		_, _ = l.out.Write(line)
	}
}

// Event implements sandbox.EventSink. Raises are also recorded in the container's state (see
// `state`), so events only go to the debug log; stderr of `run` belongs to the container.
func (l *logger) Event(containerID, action string, attrs map[string]string) {
	l.Debugf("container %s: %s %v", containerID, action, attrs)
}

// Step implements sandbox.StepSink. With --debug, step times are kept and written as one line by
// flushSteps when the command ends: a line per step (each an O_SYNC write) would slow what it
// measures. A step reported ends now: the CLI's next own step (lap) is timed from here.
func (l *logger) Step(_, step string, d time.Duration) {
	if !l.debug {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.record(step, d, now)
}

// lap times one of the CLI's own steps (named cli:*), between the parts the sandbox and the
// policy gate time themselves: with --debug, it records the time since the last step reported
// ended (or main began) as step, so that the steps of a run add up to its wall time.
func (l *logger) lap(step string) { l.lapAt(step, time.Now()) }

// lapAt is lap for a step that ended at end.
func (l *logger) lapAt(step string, end time.Time) {
	if !l.debug {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.record(step, end.Sub(l.last), end)
}

// record keeps step's time d, ended at end; l.mu is held.
func (l *logger) record(step string, d time.Duration, end time.Time) {
	l.steps = append(l.steps, step+"="+strconv.FormatInt(d.Nanoseconds(), 10))
	l.last = end
}

// flushSteps writes the steps timed so far, in ns, between main-at (when main began) and end-at
// (now), both Unix ns: a caller that knows when it started the runtime and when it ended reads
// its start-up and exit from them. The debug lines not written yet go with them.
func (l *logger) flushSteps() {
	l.mu.Lock()
	steps := l.steps
	l.steps = nil
	l.mu.Unlock()
	if len(steps) > 0 {
		l.Debugf("steps: main-at=%d %s end-at=%d", l.mainAt.UnixNano(), strings.Join(steps, " "), time.Now().UnixNano())
	}
	l.flush()
}
