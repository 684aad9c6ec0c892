package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// LogEntry is one line of a container's log (docker's json-file format).
type LogEntry struct {
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
	Log    string    `json:"log"`
}

// Log rotation defaults: container.log plus container.log.1 … .N, each at most MaxSize bytes.
const (
	DefaultLogMaxSize  = 10 << 20
	DefaultLogMaxFiles = 3
)

// LogWriter appends entries to a log file and rotates it by size. It is safe for concurrent use.
type LogWriter struct {
	path     string
	maxSize  int64
	maxFiles int

	mu   sync.Mutex // guards f and size
	f    *os.File
	size int64
}

// OpenLog opens (appending) a rotating log at path.
func OpenLog(path string, maxSize int64, maxFiles int) (*LogWriter, error) {
	if maxSize <= 0 {
		maxSize = DefaultLogMaxSize
	}
	if maxFiles <= 0 {
		maxFiles = DefaultLogMaxFiles
	}
	w := &LogWriter{path: path, maxSize: maxSize, maxFiles: maxFiles}
	return w, w.open()
}

func (w *LogWriter) open() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, st.Size()
	return nil
}

// rotate shifts container.log.(N-1) → .N … container.log → .1 and starts a new file.
func (w *LogWriter) rotate() error {
	w.f.Close()
	for i := w.maxFiles - 1; i >= 1; i-- {
		os.Rename(w.path+"."+strconv.Itoa(i), w.path+"."+strconv.Itoa(i+1))
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return w.open()
}

// Write records one entry.
func (w *LogWriter) Write(e LogEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.size > 0 && w.size+int64(len(b)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return err
}

// Close closes the current file.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}

// Pump copies r into the log as entries of stream, one per line (a line longer than 16 KiB is
// split), until r ends.
func (w *LogWriter) Pump(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if werr := w.Write(LogEntry{Stream: stream, Time: time.Now().UTC(), Log: string(line)}); werr != nil {
				return werr
			}
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return nil
		default:
			return err
		}
	}
}

// ReadLogs calls fn for every entry of the container's logs, oldest first (rotated files too).
func ReadLogs(path string, maxFiles int, fn func(LogEntry) error) error {
	if err := readRotated(path, maxFiles, nil, fn); err != nil {
		return err
	}
	return readLogFile(path, nil, fn)
}

// ReadLogsUpTo is ReadLogs for a reader that goes on following the log: the current file is cur,
// opened by the caller, and is read to its first size bytes only (cur nil: there was no current
// file, none is read). Following from size in cur then sees every entry once. A rotated file that
// is cur itself (the log rotated since cur was opened) is skipped: cur covers it.
func ReadLogsUpTo(path string, maxFiles int, cur *os.File, size int64, fn func(LogEntry) error) error {
	var curInfo os.FileInfo
	if cur != nil {
		var err error
		if curInfo, err = cur.Stat(); err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
	if err := readRotated(path, maxFiles, curInfo, fn); err != nil || cur == nil {
		return err
	}
	return readEntries(io.NewSectionReader(cur, 0, size), fn)
}

// readRotated hands fn the entries of the rotated files, oldest first, skipping skip.
func readRotated(path string, maxFiles int, skip os.FileInfo, fn func(LogEntry) error) error {
	if maxFiles <= 0 {
		maxFiles = DefaultLogMaxFiles
	}
	for i := maxFiles; i >= 1; i-- {
		if err := readLogFile(path+"."+strconv.Itoa(i), skip, fn); err != nil {
			return err
		}
	}
	return nil
}

// readLogFile hands fn every entry of the log file at p, unless it is missing or is skip.
func readLogFile(p string, skip os.FileInfo, fn func(LogEntry) error) error {
	f, err := os.Open(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if skip != nil {
		if fi, err := f.Stat(); err == nil && os.SameFile(fi, skip) {
			return nil
		}
	}
	return readEntries(f, fn)
}

func readEntries(r io.Reader, fn func(LogEntry) error) error {
	dec := json.NewDecoder(r)
	for {
		var e LogEntry
		if err := dec.Decode(&e); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
