package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"bulwark.dev/bulwark/internal/jsontext"
	"golang.org/x/sys/unix"
)

// Options tune a Log. Zero values take the defaults below.
type Options struct {
	// SegmentMaxBytes rotates to a new segment file once the current one reaches this size.
	SegmentMaxBytes int64
	// CheckpointEvery signs a checkpoint after this many records since the last one…
	CheckpointEvery uint64
	// CheckpointInterval …or once this much time has passed since the last one, at the next append.
	CheckpointInterval time.Duration
	// Sinks receive every record after it is durable in the file log.
	Sinks []Sink
	// Now is the clock; tests replace it.
	Now func() time.Time
}

const (
	defaultSegmentMaxBytes    = 64 << 20
	defaultCheckpointEvery    = 1000
	defaultCheckpointInterval = time.Minute

	segmentPrefix   = "audit-"
	segmentSuffix   = ".jsonl"
	checkpointsFile = "checkpoints.jsonl"
	lockFile        = "lock"
	tornDir         = "torn"
)

// Log is the append side of the audit trail. It is safe for concurrent use by goroutines, and
// several processes may append to the same directory at once: every append holds an exclusive
// flock on the directory's lock file and re-reads the tail if another process moved it.
type Log struct {
	dir  string
	opts Options
	// seed is the signing key's seed, read (and checked) by Open; the key is derived from it at
	// the first checkpoint: the derivation, the first in a process, took ≈ 1.8 ms of every Open,
	// and most processes sign no checkpoint.
	seed []byte

	mu sync.Mutex // guards everything below
	// lock is the lock file's descriptor (-1 once closed): a plain one, not an *os.File, whose
	// set-up (an fcntl, the file's cleanup and three allocations) was a tenth of Open on every
	// bulwark-runc start. Close releases it; nothing else does.
	lock int
	key  ed25519.PrivateKey // nil until the first checkpoint
	// tail is what this process last saw at the end of the chain.
	tail tailState
}

// tailState is the end of the chain: where the next record goes and what it links to.
type tailState struct {
	segment  int    // number of the current segment file
	size     int64  // its size when last seen
	seq      uint64 // last record's sequence number (0: none yet)
	hash     string // last record's hash
	ckptSeq  uint64 // sequence number of the last checkpoint
	ckptTime time.Time
}

// Open opens (creating if needed) the audit log in dir, with its signing key.
func Open(dir string, opts Options) (*Log, error) {
	if opts.SegmentMaxBytes <= 0 {
		opts.SegmentMaxBytes = defaultSegmentMaxBytes
	}
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = defaultCheckpointEvery
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = defaultCheckpointInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	seed, err := loadOrCreateKey(dir)
	if err != nil {
		return nil, err
	}
	// The lock file is only ever flocked: opened with a plain system call, not registered with
	// the runtime's poller (os.OpenFile) for that.
	path := filepath.Join(dir, lockFile)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit lock: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	return &Log{dir: dir, opts: opts, seed: seed, lock: fd, tail: tailState{segment: -1}}, nil
}

// Dir is the directory the log lives in.
func (l *Log) Dir() string { return l.dir }

// Close releases the log's files. A closed log refuses to append.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock < 0 {
		return os.ErrClosed
	}
	fd := l.lock
	l.lock = -1
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close audit lock: %w", err)
	}
	return nil
}

// Append durably records events as one batch (one fsync) and returns their records.
func (l *Log) Append(events ...Event) ([]Record, error) {
	if len(events) == 0 {
		return nil, nil
	}
	return l.append(events)
}

// Repair cuts a torn last record (see TornTailError) exactly as the next Append would: the
// partial bytes are kept under torn/ and the repair goes into the chain as an audit "repair"
// record, which it returns (nil when the tail was whole).
func (l *Log) Repair() (*Record, error) {
	records, err := l.append(nil)
	if len(records) == 0 {
		return nil, err
	}
	return &records[0], err
}

// append writes the record of a torn-tail repair, if one was needed, then events.
func (l *Log) append(events []Event) ([]Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lock < 0 {
		return nil, fmt.Errorf("lock audit log: %w", os.ErrClosed)
	}
	if err := unix.Flock(l.lock, unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("lock audit log: %w", err)
	}
	defer unix.Flock(l.lock, unix.LOCK_UN) //nolint:errcheck // closing the lock cannot lose data

	repaired, err := l.refreshTail()
	if err != nil {
		return nil, err
	}
	if repaired != nil {
		events = append([]Event{*repaired}, events...)
	}
	if len(events) == 0 {
		return nil, nil
	}
	records, err := l.write(events)
	if err != nil {
		return nil, err
	}
	if err := l.maybeCheckpoint(); err != nil {
		return records, err
	}
	for _, s := range l.opts.Sinks {
		for _, r := range records {
			if err := s.Write(r); err != nil {
				return records, fmt.Errorf("audit sink: %w", err)
			}
		}
	}
	return records, nil
}

// write appends records for events to the current segment, rotating first if it is full.
func (l *Log) write(events []Event) ([]Record, error) {
	if l.tail.size >= l.opts.SegmentMaxBytes {
		l.tail.segment++
		l.tail.size = 0
	}
	f, err := os.OpenFile(l.segmentPath(l.tail.segment), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit segment: %w", err)
	}
	defer f.Close()
	// A batch (a run's: three records, 2 KB) is encoded in one buffer, each record first for its
	// hash in the buffer's spare capacity where its line then goes: grown from empty, the line
	// buffer and a hash buffer per record were a dozen allocations of growing sizes.
	buf := make([]byte, 0, 4<<10)
	records := make([]Record, 0, len(events))
	seq, prev := l.tail.seq, l.tail.hash
	for _, ev := range events {
		seq++
		r := Record{Seq: seq, Time: l.opts.Now().UTC(), Event: ev.validUTF8()}
		if err := r.seal(prev, buf[len(buf):]); err != nil {
			return nil, err
		}
		if buf, err = r.appendJSON(buf); err != nil {
			return nil, fmt.Errorf("encode record %d: %w", seq, err)
		}
		buf = append(buf, '\n')
		records = append(records, r)
		prev = r.Hash
	}
	// One write call so that a concurrent reader never sees half a batch unless power fails.
	if _, err := f.Write(buf); err != nil {
		return nil, fmt.Errorf("append to audit segment: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync audit segment: %w", err)
	}
	l.tail.size += int64(len(buf))
	l.tail.seq, l.tail.hash = seq, prev
	return records, nil
}

// refreshTail brings l.tail up to date with the files (another process may have appended) and
// repairs a torn last record, returning the event that records the repair.
func (l *Log) refreshTail() (*Event, error) {
	segs, err := listSegments(l.dir)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		l.tail = tailState{segment: 0}
		return nil, l.loadCheckpointTail()
	}
	last := segs[len(segs)-1]
	st, err := os.Stat(l.segmentPath(last))
	if err != nil {
		return nil, fmt.Errorf("stat audit segment: %w", err)
	}
	if last == l.tail.segment && st.Size() == l.tail.size {
		return nil, nil
	}
	repaired, err := l.repairTorn(last, st.Size())
	if err != nil {
		return nil, err
	}
	l.tail.segment = last
	if err := l.readTail(segs); err != nil {
		return nil, err
	}
	return repaired, l.loadCheckpointTail()
}

// readTail finds the last record, looking back through earlier segments if the last one is empty.
func (l *Log) readTail(segs []int) error {
	for i := len(segs) - 1; i >= 0; i-- {
		line, size, _, err := lastLine(l.segmentPath(segs[i]))
		if err != nil {
			return err
		}
		if i == len(segs)-1 {
			l.tail.size = size
		}
		if line == nil {
			continue
		}
		var r Record
		if err := jsontext.Decode(line, &r, readRecord); err != nil {
			return fmt.Errorf("audit log tail in %s is corrupt (run 'bulwark audit verify'): %w", segmentName(segs[i]), err)
		}
		l.tail.seq, l.tail.hash = r.Seq, r.Hash
		return nil
	}
	l.tail.seq, l.tail.hash = 0, ""
	return nil
}

// repairTorn cuts a partial last line (a write torn by a crash) off segment n, keeps the cut bytes
// under torn/ and returns the event that records the repair. A torn record is never dropped silently.
func (l *Log) repairTorn(n int, size int64) (*Event, error) {
	path := l.segmentPath(n)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open audit segment: %w", err)
	}
	defer f.Close()
	end, err := lastNewlineEnd(f, size)
	if err != nil {
		return nil, err
	}
	if end == size {
		return nil, nil
	}
	torn := make([]byte, size-end)
	if _, err := f.ReadAt(torn, end); err != nil {
		return nil, fmt.Errorf("read torn audit record: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(l.dir, tornDir), 0o700); err != nil {
		return nil, fmt.Errorf("create torn-record dir: %w", err)
	}
	keep := filepath.Join(l.dir, tornDir, fmt.Sprintf("%s-%d.bin", segmentName(n), end))
	if err := os.WriteFile(keep, torn, 0o600); err != nil {
		return nil, fmt.Errorf("keep torn audit record: %w", err)
	}
	if err := f.Truncate(end); err != nil {
		return nil, fmt.Errorf("cut torn audit record: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync repaired audit segment: %w", err)
	}
	return &Event{Type: TypeAudit, Action: "repair", Attrs: map[string]string{
		"segment": segmentName(n), "offset": strconv.FormatInt(end, 10),
		"torn_bytes": strconv.Itoa(len(torn)), "kept_at": keep,
	}}, nil
}

// lastNewlineEnd returns the offset just past the last '\n' in the first size bytes of f. It
// reads back from size in chunks of 4 KB, doubling up to 64 KB: a record is a few KB at most, and
// the first append of a process (a bulwark run's) looks at the log's tail three times, and a
// 64 KB buffer and read each time faulted in and copied mostly what is not needed.
func lastNewlineEnd(f *os.File, size int64) (int64, error) {
	const maxChunk = 64 << 10
	var buf []byte
	for end, chunk := size, int64(4<<10); end > 0; chunk = min(2*chunk, maxChunk) {
		if int64(len(buf)) < chunk {
			buf = make([]byte, chunk)
		}
		start := max(end-chunk, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && n != int(end-start) {
			return 0, fmt.Errorf("read audit segment: %w", err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// lastLine returns the last complete line of path (without '\n'), the file's size, and whether
// the file ends with that line (false: a partial line follows it).
func lastLine(path string) ([]byte, int64, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		// The *PathError names the operation and the file: wrapping it again formatted an error
		// at every process's first append, for the checkpoints file that most logs do not have.
		return nil, 0, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, false, fmt.Errorf("stat audit file: %w", err)
	}
	size := st.Size()
	// A record is far shorter than 4 KB: the last line and the newline before it are nearly
	// always in the file's last 4 KB, found with one read (lastNewlineEnd twice read that chunk
	// twice, into two buffers, and the line into a third).
	tail := make([]byte, min(size, 4<<10))
	off := size - int64(len(tail))
	if n, err := f.ReadAt(tail, off); err != nil && n != len(tail) {
		return nil, 0, false, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if end := bytes.LastIndexByte(tail, '\n'); end >= 0 {
		if start := bytes.LastIndexByte(tail[:end], '\n') + 1; start > 0 || off == 0 {
			return tail[start:end:end], size, off+int64(end)+1 == size, nil
		}
	}
	end, err := lastNewlineEnd(f, size)
	if err != nil || end == 0 {
		return nil, size, size == 0, err
	}
	start, err := lastNewlineEnd(f, end-1)
	if err != nil {
		return nil, 0, false, err
	}
	line := make([]byte, end-1-start)
	if _, err := f.ReadAt(line, start); err != nil {
		return nil, 0, false, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return line, size, end == size, nil
}

func (l *Log) segmentPath(n int) string { return filepath.Join(l.dir, segmentName(n)) }

func segmentName(n int) string { return fmt.Sprintf("%s%06d%s", segmentPrefix, n, segmentSuffix) }

// listSegments returns the segment numbers in dir, ascending.
func listSegments(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list audit dir: %w", err)
	}
	var segs []int
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, segmentPrefix) || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, segmentPrefix), segmentSuffix))
		if err != nil {
			continue
		}
		segs = append(segs, n)
	}
	sort.Ints(segs)
	return segs, nil
}

// segmentLine is one line of a segment as readRecords hands it out.
type segmentLine struct {
	Segment string
	Line    int
	Raw     []byte
	// Cut is set on a segment's last line when it has no '\n': a write that never finished.
	Cut bool
	// LastSegment is set on the lines of the newest segment, the only one an append can tear.
	LastSegment bool
}

// readRecords streams every line of every segment, in chain order, to fn.
func readRecords(dir string, fn func(segmentLine) error) error {
	segs, err := listSegments(dir)
	if err != nil {
		return err
	}
	for i, n := range segs {
		last := i == len(segs)-1
		if err := readSegment(filepath.Join(dir, segmentName(n)), func(line int, raw []byte, cut bool) error {
			return fn(segmentLine{Segment: segmentName(n), Line: line, Raw: raw, Cut: cut, LastSegment: last})
		}); err != nil {
			return err
		}
	}
	return nil
}

func readSegment(path string, fn func(line int, raw []byte, cut bool) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open audit segment: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	cut := false
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		adv, tok, err := bufio.ScanLines(data, atEOF)
		if atEOF && tok != nil && adv == len(data) && data[len(data)-1] != '\n' {
			cut = true
		}
		return adv, tok, err
	})
	for line := 1; sc.Scan(); line++ {
		if err := fn(line, sc.Bytes(), cut); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return nil
}
