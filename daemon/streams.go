package daemon

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/api/types"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

// Output reaches clients in Docker's formats: for a container without a terminal, the
// multiplexed stream (each frame an 8-byte header — stream 1 stdout or 2 stderr, three zero
// bytes, a big-endian uint32 length — then the payload); with a terminal, the raw bytes. The
// source is the container's log, which the engine's monitor writes (json-file lines).

// streamWriter frames log entries for one client.
type streamWriter struct {
	w          io.Writer
	flush      func()
	raw        bool
	stdout     bool
	stderr     bool
	timestamps bool
}

func (sw *streamWriter) write(e engine.LogEntry) error {
	var kind byte = 1
	if e.Stream == "stderr" {
		if !sw.stderr {
			return nil
		}
		kind = 2
	} else if !sw.stdout {
		return nil
	}
	p := []byte(e.Log)
	if sw.timestamps {
		p = append([]byte(e.Time.UTC().Format(time.RFC3339Nano)+" "), p...)
	}
	if !sw.raw {
		var hdr [8]byte
		hdr[0] = kind
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
		p = append(hdr[:], p...)
	}
	if _, err := sw.w.Write(p); err != nil {
		return err
	}
	if sw.flush != nil {
		sw.flush()
	}
	return nil
}

// fromEnd is follow's offset for "what is written from now on".
const fromEnd = -1

// follow reads the log at path and hands every entry to fn: container.log (f if the caller
// opened it already, f's ownership passing to follow) from offset from (fromEnd: its current end)
// as it grows, then the files after each rotation whole, until done is closed and the log is
// drained, or ctx ends. A log not made yet (the container not started) is waited for.
func follow(ctx context.Context, path string, f *os.File, from int64, done <-chan struct{}, fn func(engine.LogEntry) error) error {
	opened := f != nil
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var lr *lineReader
	finished := false
	for {
		if f == nil || opened {
			var err error
			if !opened {
				f, err = os.Open(path)
			}
			opened = false
			if err == nil {
				lr = &lineReader{rd: bufio.NewReaderSize(f, 64<<10)}
				whence := io.SeekStart
				if from == fromEnd {
					from, whence = 0, io.SeekEnd
				}
				if _, err := f.Seek(from, whence); err != nil {
					return err
				}
				from = 0 // a file after a rotation is read whole
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		if f != nil {
			if err := lr.readLines(fn); err != nil {
				return err
			}
			if rotated(f, path) {
				if err := lr.readLines(fn); err != nil {
					return err
				}
				f.Close()
				f = nil
				continue
			}
		}
		if finished {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			finished = true // one more pass drains what was written before the exit
		case <-time.After(pollInterval):
		}
	}
}

// lineReader reads a growing log: complete lines only, a partial last line kept for the next
// pass.
type lineReader struct {
	rd      *bufio.Reader
	pending []byte
}

// readLines hands every complete line to fn.
func (lr *lineReader) readLines(fn func(engine.LogEntry) error) error {
	for {
		line, err := lr.rd.ReadBytes('\n')
		lr.pending = append(lr.pending, line...)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var e engine.LogEntry
		jerr := json.Unmarshal(lr.pending, &e)
		lr.pending = lr.pending[:0]
		if jerr != nil {
			return fmt.Errorf("read log: %w", jerr)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// rotated says whether path now names another file than f (the writer rotated the log).
func rotated(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && !os.SameFile(a, b)
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	q := r.URL.Query()
	if q.Get("since") != "" && q.Get("since") != "0" || q.Get("until") != "" && q.Get("until") != "0" {
		return notImplemented("logs --since/--until")
	}
	sw := &streamWriter{raw: rec.Config.Tty, stdout: boolParam(r, "stdout"), stderr: boolParam(r, "stderr"), timestamps: boolParam(r, "timestamps")}
	if !sw.stdout && !sw.stderr {
		return statusError(http.StatusBadRequest, "Bad parameters: you must choose at least one stream")
	}
	tail := -1
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return statusError(http.StatusBadRequest, "tail %q: want a number or all", t)
		}
		tail = n
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	ct := types.MediaTypeMultiplexedStream
	if sw.raw {
		ct = types.MediaTypeRawStream
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	sw.w, sw.flush = w, func() { rc.Flush() }
	who := engineCaller(c, rec)
	if !boolParam(r, "follow") || !rec.Started {
		// What is there now (rotated files too), the last tail entries of it.
		buf, err := lastEntries(tail, func(fn func(engine.LogEntry) error) error { return s.eng.ReadLogs(rec.ID, who, fn) })
		if err != nil && rec.Started {
			return nil // the headers are out; the stream just ends
		}
		sendEntries(buf, sw)
		return nil
	}
	wt := s.watch.get(rec.ID)
	read := func(cur *os.File, size int64, fn func(engine.LogEntry) error) error {
		return s.eng.ReadLogsUpTo(rec.ID, who, cur, size, fn)
	}
	followLog(r.Context(), s.eng.LogPath(rec.ID), read, tail, wt.exited, sw)
	return nil
}

// followLog sends the log at path to sw: the last tail entries (tail < 0: all) of what read finds
// now, then what is written after, until done is closed and the log drained, or ctx ends. The
// current file is opened and its size taken before read reads it, and following goes on from that
// size in that same file, so an entry written between the read and the follow is sent once, not
// lost (TestFollowLogSeesEveryEntry). No current file yet: following starts at its beginning.
func followLog(ctx context.Context, path string, read func(cur *os.File, size int64, fn func(engine.LogEntry) error) error,
	tail int, done <-chan struct{}, sw *streamWriter) {
	cur, size, err := openLogEnd(path)
	if err != nil {
		return // the headers are out; the stream just ends
	}
	buf, err := lastEntries(tail, func(fn func(engine.LogEntry) error) error { return read(cur, size, fn) })
	if err != nil || !sendEntries(buf, sw) {
		if cur != nil {
			cur.Close()
		}
		return
	}
	follow(ctx, path, cur, size, done, sw.write)
}

// lastEntries returns the last tail entries (tail < 0: all) that read hands its function.
func lastEntries(tail int, read func(fn func(engine.LogEntry) error) error) ([]engine.LogEntry, error) {
	var buf []engine.LogEntry
	err := read(func(e engine.LogEntry) error {
		buf = append(buf, e)
		if tail >= 0 && len(buf) > tail {
			buf = buf[1:]
		}
		return nil
	})
	return buf, err
}

// sendEntries writes the entries to sw and flushes it; false if the client went away.
func sendEntries(buf []engine.LogEntry, sw *streamWriter) bool {
	for _, e := range buf {
		if err := sw.write(e); err != nil {
			return false
		}
	}
	if sw.flush != nil {
		sw.flush()
	}
	return true
}

// openLogEnd opens the log's current file and returns it with its size now; nil and 0 if there is
// no file yet.
func openLogEnd(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// containerAttach hijacks the connection and streams the container's output (from its log, or
// with stdin attached to a terminal, from the terminal) until it exits; stdin goes to the
// container (stdin.go).
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request, c *call) error {
	rec := c.target
	if dk := r.URL.Query().Get("detachKeys"); dk != "" {
		return notImplemented("detach keys")
	}
	var stdin *os.File
	if boolParam(r, "stdin") && !rec.Config.Tty {
		var err error
		if stdin, err = s.stdinOf(rec); err != nil {
			return err
		}
	}
	if boolParam(r, "stdin") && rec.Config.Tty {
		if !rec.Config.OpenStdin {
			return errdefs.Errorf(errdefs.ErrConflict, "container %s was not created with an open stdin (-i)", rec.Name)
		}
		conn, brw, err := hijack(w, r, types.MediaTypeRawStream)
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := s.attachTerminal(r.Context(), rec, conn, brw); err != nil {
			s.log.Debug("attach ended", "container", rec.ID, "error", err)
		}
		return nil
	}
	sw := &streamWriter{raw: rec.Config.Tty, stdout: boolParam(r, "stdout"), stderr: boolParam(r, "stderr")}
	if !boolParam(r, "stream") && !boolParam(r, "logs") {
		return statusError(http.StatusBadRequest, "attach: ask for stream and/or logs")
	}
	ct := types.MediaTypeRawStream
	if !sw.raw && compareVersions(c.version, "1.42") >= 0 {
		ct = types.MediaTypeMultiplexedStream
	}
	// Registered before the client is answered (it starts the container then): an auto-remove
	// waits for it to read the log to its end (watch.go, streamGrace).
	defer s.watch.attached(rec.ID)()
	conn, brw, err := hijack(w, r, ct)
	if err != nil {
		return err
	}
	defer conn.Close()
	sw.w = conn
	// A client that goes away ends the stream; one that only closes its sending side stays.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if stdin != nil {
			s.pumpStdin(rec, brw, stdin)
			return
		}
		_, err := io.Copy(io.Discard, brw)
		if err != nil && !errors.Is(err, io.EOF) {
			cancel()
		}
	}()
	wt := s.watch.get(rec.ID)
	var from int64 = fromEnd
	if boolParam(r, "logs") || !rec.Started {
		from = 0
	}
	if !boolParam(r, "stream") {
		s.eng.ReadLogs(rec.ID, engineCaller(c, rec), sw.write)
		return nil
	}
	select {
	case <-wt.exited:
		// Ended: the stream is its next run's (docker start -a attaches, then starts), from
		// what the log holds now.
		if fi, err := os.Stat(s.eng.LogPath(rec.ID)); err == nil && from == fromEnd {
			from = fi.Size()
		}
		var ok bool
		if wt, ok = s.watch.next(ctx, rec.ID, wt); !ok {
			return nil
		}
	default:
	}
	if err := follow(ctx, s.eng.LogPath(rec.ID), nil, from, wt.exited, sw.write); err != nil && !errors.Is(err, syscall.EPIPE) {
		s.log.Debug("attach ended", "container", rec.ID, "error", err)
	}
	return nil
}
