package audit

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTestLog(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendN(t *testing.T, l *Log, n int) {
	t.Helper()
	for i := range n {
		ev := Event{Type: TypeContainer, Action: "start", Tenant: "t1", ContainerID: fmt.Sprintf("c%d", i),
			Attrs: map[string]string{"pid": fmt.Sprint(1000 + i)}}
		if _, err := l.Append(ev); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

func mustVerify(t *testing.T, dir string, anchor *Checkpoint) Report {
	t.Helper()
	rep, err := Verify(dir, anchor)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func TestAppendVerifyAndQuery(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, Options{CheckpointEvery: 4})
	appendN(t, l, 10)
	rep := mustVerify(t, dir, nil)
	if rep.Records != 10 || rep.LastSeq != 10 || rep.Checkpoints != 2 {
		t.Fatalf("report = %+v, want 10 records, 2 checkpoints", rep)
	}
	got, err := Query(dir, Filter{ContainerID: "c3"})
	if err != nil || len(got) != 1 || got[0].Seq != 4 {
		t.Fatalf("Query c3 = %+v, %v", got, err)
	}
	if st, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st, err)
	}
}

// Every single-byte edit anywhere in the log must be caught.
func TestEveryByteEditIsDetected(t *testing.T) {
	dir := t.TempDir()
	appendN(t, openTestLog(t, dir, Options{}), 3)
	seg := filepath.Join(dir, segmentName(0))
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range orig {
		edited := bytes.Clone(orig)
		edited[i] ^= 0x01
		if err := os.WriteFile(seg, edited, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(dir, nil); err == nil {
			t.Fatalf("flipping byte %d (%q) was not detected", i, orig[i])
		}
	}
}

func TestDeleteReorderInsertAreDetected(t *testing.T) {
	dir := t.TempDir()
	appendN(t, openTestLog(t, dir, Options{}), 5)
	seg := filepath.Join(dir, segmentName(0))
	orig, _ := os.ReadFile(seg)
	lines := strings.SplitAfter(string(orig), "\n")
	lines = lines[:len(lines)-1] // trailing empty element
	cases := map[string][]string{
		"delete":  {lines[0], lines[1], lines[3], lines[4]},
		"reorder": {lines[0], lines[2], lines[1], lines[3], lines[4]},
		"insert":  {lines[0], lines[1], lines[1], lines[2], lines[3], lines[4]},
	}
	for name, ls := range cases {
		if err := os.WriteFile(seg, []byte(strings.Join(ls, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		var bad *BadRecordError
		if _, err := Verify(dir, nil); !errors.As(err, &bad) {
			t.Fatalf("%s: Verify = %v, want a BadRecordError", name, err)
		} else if bad.Line > 3 {
			t.Errorf("%s: first bad record reported at line %d, want ≤ 3", name, bad.Line)
		}
	}
}

// Cutting records off the end leaves a valid chain; an exported checkpoint catches it.
func TestTruncatedTailDetectedAgainstAnchor(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, Options{})
	appendN(t, l, 6)
	anchor, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, segmentName(0))
	orig, _ := os.ReadFile(seg)
	lines := strings.SplitAfter(string(orig), "\n")
	if err := os.WriteFile(seg, []byte(strings.Join(lines[:4], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	// The attacker also removes the local checkpoints; the exported anchor still catches it.
	os.Remove(filepath.Join(dir, checkpointsFile))
	if _, err := Verify(dir, &anchor); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("Verify with anchor = %v, want truncation", err)
	}
}

// A log re-signed with a new key does not verify against an anchor signed by the old one.
func TestRewrittenLogFailsAgainstAnchorKey(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, Options{})
	appendN(t, l, 2)
	anchor, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	forged := t.TempDir()
	appendN(t, openTestLog(t, forged, Options{}), 2)
	if _, err := Verify(forged, &anchor); err == nil {
		t.Fatal("a different log verified against the anchor")
	}
}

func TestTornRecordIsRepairedAndRecorded(t *testing.T) {
	dir := t.TempDir()
	appendN(t, openTestLog(t, dir, Options{}), 3)
	seg := filepath.Join(dir, segmentName(0))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"v":"bulwark.dev/audit/v1","seq":4,"ti`) // power lost mid-write
	f.Close()
	var torn *TornTailError
	if rep, err := Verify(dir, nil); !errors.As(err, &torn) || torn.Bytes != 39 || torn.Line != 4 || rep.Records != 3 {
		t.Fatalf("Verify = %+v, %v; want a torn tail of 39 bytes at line 4 after 3 good records", rep, err)
	}
	if recs, err := Query(dir, Filter{}); err != nil || len(recs) != 3 {
		t.Fatalf("Query over a torn tail = %d records, %v; want the 3 whole ones", len(recs), err)
	}
	l := openTestLog(t, dir, Options{})
	appendN(t, l, 1)
	rep := mustVerify(t, dir, nil)
	if rep.Records != 5 {
		t.Fatalf("records = %d, want 3 + repair + 1", rep.Records)
	}
	recs, _ := Query(dir, Filter{Type: TypeAudit})
	if len(recs) != 1 || recs[0].Action != "repair" || recs[0].Attrs["torn_bytes"] != "39" {
		t.Fatalf("repair event = %+v", recs)
	}
	kept, err := os.ReadFile(recs[0].Attrs["kept_at"])
	if err != nil || !strings.HasPrefix(string(kept), `{"v":`) {
		t.Fatalf("torn bytes not kept: %q %v", kept, err)
	}
}

// A write torn by ENOSPC is a torn tail, not a broken chain; verify repairs it as an append does.
func TestVerifyAndRepairTornTail(t *testing.T) {
	dir := t.TempDir()
	appendN(t, openTestLog(t, dir, Options{CheckpointEvery: 2}), 4)
	seg := filepath.Join(dir, segmentName(0))
	whole, _ := os.ReadFile(seg)
	lines := strings.SplitAfter(string(whole), "\n")
	// The disk filled up half-way through record 5 (a copy of record 4's shape).
	if err := os.WriteFile(seg, append(whole, lines[3][:50]...), 0o600); err != nil {
		t.Fatal(err)
	}
	var bad *BadRecordError
	if _, err := Verify(dir, nil); errors.As(err, &bad) || err == nil {
		t.Fatalf("Verify = %v, want a torn tail, not a broken chain", err)
	}
	rep, err := VerifyAndRepair(dir, nil)
	if err != nil {
		t.Fatalf("VerifyAndRepair: %v", err)
	}
	if rep.Repaired == nil || rep.Repaired.Action != "repair" || rep.Repaired.Attrs["torn_bytes"] != "50" || rep.Records != 5 {
		t.Fatalf("report = %+v, repaired %+v; want 4 records + the repair of 50 bytes", rep, rep.Repaired)
	}
	if kept, err := os.ReadFile(rep.Repaired.Attrs["kept_at"]); err != nil || string(kept) != lines[3][:50] {
		t.Fatalf("torn bytes kept = %q, %v", kept, err)
	}
	// Whole again: nothing more to repair, and appends carry on from the repair record.
	if rep, err := VerifyAndRepair(dir, nil); err != nil || rep.Repaired != nil {
		t.Fatalf("second VerifyAndRepair = %+v, %v", rep, err)
	}
	appendN(t, openTestLog(t, dir, Options{}), 1)
	if rep := mustVerify(t, dir, nil); rep.Records != 6 {
		t.Fatalf("records = %d, want 6", rep.Records)
	}
}

// Only the newest segment can be torn by an append: a partial record that ends an older segment
// is a cut, reported as a broken chain and never repaired.
func TestCutOlderSegmentIsNotATornTail(t *testing.T) {
	dir := t.TempDir()
	appendN(t, openTestLog(t, dir, Options{SegmentMaxBytes: 600}), 8)
	segs, _ := listSegments(dir)
	if len(segs) < 2 {
		t.Fatalf("segments = %v, want rotation", segs)
	}
	first := filepath.Join(dir, segmentName(segs[0]))
	b, _ := os.ReadFile(first)
	if err := os.WriteFile(first, b[:len(b)-20], 0o600); err != nil {
		t.Fatal(err)
	}
	var bad *BadRecordError
	if _, err := VerifyAndRepair(dir, nil); !errors.As(err, &bad) {
		t.Fatalf("VerifyAndRepair = %v, want a BadRecordError", err)
	}
	if after, _ := os.ReadFile(first); len(after) != len(b)-20 {
		t.Fatal("a cut older segment was modified")
	}
}

func TestRotationKeepsTheChain(t *testing.T) {
	dir := t.TempDir()
	appendN(t, openTestLog(t, dir, Options{SegmentMaxBytes: 600}), 12)
	segs, _ := listSegments(dir)
	if len(segs) < 3 {
		t.Fatalf("segments = %v, want rotation", segs)
	}
	if rep := mustVerify(t, dir, nil); rep.Records != 12 {
		t.Fatalf("records = %d", rep.Records)
	}
	// Removing a whole middle segment breaks the chain.
	os.Remove(filepath.Join(dir, segmentName(segs[1])))
	if _, err := Verify(dir, nil); err == nil {
		t.Fatal("a removed segment was not detected")
	}
}

// Several writers with their own Log (as several CLI processes would have) keep one chain.
func TestConcurrentWritersKeepOneChain(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Open(dir, Options{CheckpointEvery: 37})
			if err != nil {
				t.Error(err)
				return
			}
			defer l.Close()
			for i := range each {
				if _, err := l.Append(Event{Type: TypeContainer, Action: "exec", ContainerID: fmt.Sprintf("w%d-%d", w, i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if rep := mustVerify(t, dir, nil); rep.Records != writers*each {
		t.Fatalf("records = %d, want %d", rep.Records, writers*each)
	}
}

func TestCheckpointEveryInterval(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := openTestLog(t, dir, Options{CheckpointInterval: 10 * time.Second, Now: func() time.Time { return now }})
	appendN(t, l, 2)
	if _, err := LatestCheckpoint(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checkpoint before the interval: %v", err)
	}
	now = now.Add(11 * time.Second)
	appendN(t, l, 1)
	c, err := LatestCheckpoint(dir)
	if err != nil || c.Seq != 3 {
		t.Fatalf("checkpoint = %+v, %v", c, err)
	}
}

func TestSyslogFormat(t *testing.T) {
	s := &SyslogSink{hostname: "h", appName: "bulwark"}
	r := Record{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Event: Event{Type: "container", Action: "start"}}
	msg, err := s.Format(r)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("<85>1 2026-01-02T03:04:05.000000006Z h bulwark %d container.start - {", os.Getpid())
	if !strings.HasPrefix(string(msg), want) {
		t.Fatalf("syslog message %q, want prefix %q", msg, want)
	}
}

func BenchmarkAppendBatched(b *testing.B) {
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const batch = 1000
	evs := make([]Event, batch)
	for i := range evs {
		evs[i] = Event{Type: TypeContainer, Action: "exec", Tenant: "t", ContainerID: "c", Attrs: map[string]string{"pid": "42"}}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Append(evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppendSingle(b *testing.B) {
	l, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ev := Event{Type: TypeContainer, Action: "start", Tenant: "t", ContainerID: "c"}
	for b.Loop() {
		if _, err := l.Append(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// Open refuses a signing key it cannot use: a key file shorter or longer than a seed, or one that
// cannot be read, is an error, never a key made up or cut to size; the key it made is read back.
func TestOpenRefusesBadKey(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, Options{})
	seed := l.seed
	l.Close()
	again := openTestLog(t, dir, Options{})
	if !bytes.Equal(again.seed, seed) || len(seed) != 32 {
		t.Fatalf("seed read back %x, made %x", again.seed, seed)
	}
	for name, content := range map[string][]byte{
		"empty": {}, "short": seed[:31], "one more": append(bytes.Clone(seed), 0), "long": bytes.Repeat(seed, 3),
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, keyFile), content, 0o600); err != nil {
			t.Fatal(err)
		}
		if l, err := Open(dir, Options{}); err == nil {
			l.Close()
			t.Errorf("%s key file (%d bytes): Open succeeded", name, len(content))
		}
	}
	dir = t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, keyFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(dir, Options{}); err == nil {
		l.Close()
		t.Error("a directory as the key file: Open succeeded")
	}
}

// Open makes a missing log directory (0700, parents too) with its key, and refuses a directory
// path that is a file.
func TestOpenMakesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "audit")
	l := openTestLog(t, dir, Options{})
	appendN(t, l, 1)
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("log directory: %v %v", st, err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(file, Options{}); err == nil {
		l.Close()
		t.Fatal("Open of a file as the log directory succeeded")
	}
}

// TestClosedLogRefusesAndClosesOnce: the lock is a plain descriptor, whose number the process
// reuses once closed — a second Close must not close whatever file got it, and an append after
// Close refuses.
func TestClosedLogRefusesAndClosesOnce(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	other, err := os.Open(os.DevNull) // most likely the lock's old descriptor number
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := l.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close: %v, want os.ErrClosed", err)
	}
	if _, err := other.Stat(); err != nil {
		t.Fatalf("the second Close closed another file: %v", err)
	}
	if _, err := l.Append(Event{Type: TypeContainer, Action: "start"}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append after Close: %v, want os.ErrClosed", err)
	}
}

// TestInvalidUTF8Verifies: an event whose strings are not valid UTF-8 (an error naming a path
// of arbitrary bytes, a name or label a client chose) is recorded as JSON writes it, with each
// invalid byte a U+FFFD, and its hash is of what is recorded: the log verifies, and the record
// reads back as it was written, not reported as edited.
func TestInvalidUTF8Verifies(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, Options{})
	attrs := map[string]string{"error": "open /a\xff\xfe: no such file", "k\xc3": "v"}
	ev := Event{Type: TypeContainer, Action: "create.failed", Tenant: "t\xff", ContainerID: "bad", Attrs: attrs}
	recs, err := l.Append(ev)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if attrs["error"] != "open /a\xff\xfe: no such file" || attrs["k\xc3"] != "v" {
		t.Fatalf("Append changed the caller's attributes: %q", attrs)
	}
	appendN(t, l, 2)
	if rep := mustVerify(t, dir, nil); rep.Records != 3 {
		t.Fatalf("report = %+v, want 3 records", rep)
	}
	got, err := Query(dir, Filter{ContainerID: "bad"})
	if err != nil || len(got) != 1 {
		t.Fatalf("Query bad = %+v, %v", got, err)
	}
	if got[0].Hash != recs[0].Hash || got[0].Tenant != "t\uFFFD" || got[0].Attrs["error"] != "open /a\uFFFD\uFFFD: no such file" || got[0].Attrs["k\uFFFD"] != "v" {
		t.Fatalf("read back %+v, appended %+v", got[0], recs[0])
	}
}

// TestInvalidUTF8KeysKeptApart: attribute keys that differ only in bytes that are not valid
// UTF-8 stay apart once made valid: each invalid byte becomes U+FFFD, so "k\xff" and "k\xfe"
// (and a valid "k\uFFFD") would become one key, all values but one lost, which one depending on
// the map's order. A valid key keeps its name; the others, in byte order, take the U+FFFD form
// while it is free, then their bytes written out (\xNN). The record verifies and reads back so.
func TestInvalidUTF8KeysKeptApart(t *testing.T) {
	cases := []struct {
		attrs, want map[string]string
	}{
		{
			attrs: map[string]string{"k\xff": "1", "k\xfe": "2"},
			want:  map[string]string{"k\uFFFD": "2", `k\xff`: "1"},
		},
		{
			attrs: map[string]string{"k\xff": "1", "k\xfe": "2", "k\uFFFD": "0", `k\xfe`: "3"},
			want:  map[string]string{"k\uFFFD": "0", `k\xfe`: "3", `k\xfe#2`: "2", `k\xff`: "1"},
		},
	}
	for _, c := range cases {
		dir := t.TempDir()
		l := openTestLog(t, dir, Options{})
		// Several appends: the outcome must not depend on the order a map is walked in.
		for range 8 {
			recs, err := l.Append(Event{Type: TypeContainer, Action: "create", ContainerID: "c", Attrs: c.attrs})
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !maps.Equal(recs[0].Attrs, c.want) {
				t.Fatalf("attributes %q recorded as %q, want %q", c.attrs, recs[0].Attrs, c.want)
			}
		}
		mustVerify(t, dir, nil)
		got, err := Query(dir, Filter{ContainerID: "c"})
		if err != nil || len(got) != 8 {
			t.Fatalf("Query = %d records, %v", len(got), err)
		}
		for _, r := range got {
			if !maps.Equal(r.Attrs, c.want) {
				t.Fatalf("attributes %q read back as %q, want %q", c.attrs, r.Attrs, c.want)
			}
		}
	}
}

// TestFirstAppendReadsLastCheckpoint: a process's first append takes the checkpoint schedule from
// the last checkpoint alone, so the file's history (a line per CheckpointInterval of activity,
// for the state root's life) is not read on every run; a damaged earlier checkpoint is Verify's
// to report. A last checkpoint cut short or damaged is still refused.
func TestFirstAppendReadsLastCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, Options{CheckpointEvery: 2})
	appendN(t, l, 6) // checkpoints at 2, 4, 6
	l.Close()
	path := filepath.Join(dir, checkpointsFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(good, []byte("\n"))
	damaged := slices.Concat([]byte("{\"v\":\"damaged\n"), bytes.Join(lines[1:], nil))
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openTestLog(t, dir, Options{CheckpointEvery: 2})
	appendN(t, l, 1)
	l.Close()
	if _, err := Verify(dir, nil); err == nil || !strings.Contains(err.Error(), checkpointsFile+" line 1") {
		t.Fatalf("Verify of a damaged first checkpoint: %v", err)
	}
	for name, tail := range map[string]string{"cut short": `{"v":"bulwark.dev/audit/v1","seq":8`, "damaged": "{\"seq\":\"x\"}\n"} {
		if err := os.WriteFile(path, append(slices.Clone(good), tail...), 0o600); err != nil {
			t.Fatal(err)
		}
		l := openTestLog(t, dir, Options{CheckpointEvery: 2})
		if _, err := l.Append(Event{Type: TypeContainer, Action: "start"}); err == nil {
			t.Fatalf("append after a last checkpoint %s: no error", name)
		}
		l.Close()
	}
}
