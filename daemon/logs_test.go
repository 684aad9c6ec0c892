package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bulwark.dev/bulwark/engine"
)

// An entry the container writes between followLog's read of the log and its follow is sent once:
// the Python SDK's run (logs with follow right after start) lost a container's whole output so
// when the follow went on from the file's end as it was after the read.
func TestFollowLogSeesEveryEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	w, err := engine.OpenLog(path, 1<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	entry := func(s string) engine.LogEntry {
		return engine.LogEntry{Stream: "stdout", Time: time.Now(), Log: s + "\n"}
	}
	if err := w.Write(entry("one")); err != nil {
		t.Fatal(err)
	}
	read := func(cur *os.File, size int64, fn func(engine.LogEntry) error) error {
		err := engine.ReadLogsUpTo(path, 2, cur, size, fn)
		// The container writes while the reader is between its read and its follow.
		if werr := w.Write(entry("two")); werr != nil {
			t.Fatal(werr)
		}
		return err
	}
	exited := make(chan struct{})
	close(exited)
	var out bytes.Buffer
	sw := &streamWriter{w: &out, raw: true, stdout: true}
	followLog(context.Background(), path, read, -1, exited, sw)
	if got := out.String(); got != "one\ntwo\n" {
		t.Fatalf("followed log = %q, want %q", got, "one\ntwo\n")
	}
}

// With no log file yet, what is written before the follow starts is sent whole, once.
func TestFollowLogWithoutFileYet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	var w *engine.LogWriter
	read := func(cur *os.File, size int64, fn func(engine.LogEntry) error) error {
		err := engine.ReadLogsUpTo(path, 2, cur, size, fn)
		var oerr error
		if w, oerr = engine.OpenLog(path, 1<<20, 2); oerr != nil {
			t.Fatal(oerr)
		}
		if werr := w.Write(engine.LogEntry{Stream: "stdout", Time: time.Now(), Log: "late\n"}); werr != nil {
			t.Fatal(werr)
		}
		return err
	}
	exited := make(chan struct{})
	close(exited)
	var out bytes.Buffer
	followLog(context.Background(), path, read, -1, exited, &streamWriter{w: &out, raw: true, stdout: true})
	w.Close()
	if got := out.String(); got != "late\n" {
		t.Fatalf("followed log = %q, want %q", got, "late\n")
	}
}
