package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand"
	randv2 "math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"bulwark.dev/bulwark/internal/jsontext/encodertest"
	"bulwark.dev/bulwark/internal/jsontext/readertest"
)

// TestRecordJSONIsEncodingJSON: a record's hand-written encoder writes exactly what encoding/json
// writes for it, and so hashes it as before — the zero record and 3,000 random ones, every field
// (a field added later is filled too, and fails the test until the encoder writes it) with empty
// and set values, strings of any bytes and runes, attrs of many keys. A record's line and hash
// from Append are json.Marshal's.
func TestRecordJSONIsEncodingJSON(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	check := func(r *Record) {
		t.Helper()
		got, err := r.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("appendJSON:\n%s\nencoding/json:\n%s", got, want)
		}
	}
	check(&Record{})
	uid := 0
	check(&Record{Event: Event{Actor: Actor{UID: &uid}, Attrs: map[string]string{}}})
	check(&Record{Event: Event{Actor: Actor{Principal: "p"}}})
	for i := 0; i < 3000; i++ {
		r := &Record{}
		encodertest.Fill(t, rnd, reflect.ValueOf(r).Elem())
		check(r)
	}
	// A time encoding/json cannot write is an error for both.
	if _, err := (&Record{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).appendJSON(nil); err == nil {
		t.Fatal("a year past 9999 encoded")
	}

	dir := t.TempDir()
	l := openTestLog(t, dir, Options{})
	recs, err := l.Append(Event{Type: TypeContainer, Action: "create", Tenant: "t<1>", Attrs: map[string]string{"b": "x\u2028&", "a": "é\t"}},
		Event{Type: TypePolicy, Action: "decision"})
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, r := range recs {
		line, _ := json.Marshal(r)
		want = append(append(want, line...), '\n')
		hash := r.Hash
		r.Hash = ""
		canon, _ := json.Marshal(r)
		if sum := sha256.Sum256(canon); hash != hex.EncodeToString(sum[:]) {
			t.Fatalf("record %d hashed %s, not its encoding/json bytes' hash", r.Seq, hash)
		}
	}
	got, err := os.ReadFile(l.segmentPath(0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("log:\n%s\nencoding/json:\n%s", got, want)
	}
	mustVerify(t, dir, nil)
}

// TestRecordReaderIsEncodingJSON: the record's and the checkpoint's readers know every field of
// Record, Actor and Checkpoint, take documents of every field filled at random to
// json.Unmarshal's value, and of 8,000 mutations of them take only what json.Unmarshal decodes,
// to the same value.
func TestRecordReaderIsEncodingJSON(t *testing.T) {
	readertest.Keys(t, reflect.TypeFor[Record](), recordKeys)
	readertest.Keys(t, reflect.TypeFor[Actor](), actorKeys)
	readertest.Keys(t, reflect.TypeFor[Checkpoint](), checkpointKeys)
	readertest.NoSelfDecoders(t, reflect.TypeFor[Record](), reflect.TypeFor[Checkpoint]())
	rnd := randv2.New(randv2.NewPCG(5, 6))
	keys := slices.Concat(recordKeys, actorKeys, checkpointKeys)
	if taken := readertest.Documents(t, rnd, new(Record), readertest.Of(readRecord), keys, 300, 20) +
		readertest.Documents(t, rnd, new(Checkpoint), readertest.Of(readCheckpoint), keys, 100, 20); taken < 1000 {
		t.Fatalf("only %d mutations taken by the reader: the test mutates too much", taken)
	}
	for _, doc := range []string{`{"seq":-0}`, `{"seq":18446744073709551616}`, `{"seq":1.0}`, `{"actor":{"uid":1.5}}`, `{"Hash":"x"}`, `{"time":"2026"}`} {
		if _, ok := readertest.Of(readRecord)([]byte(doc)); ok {
			t.Errorf("record reader took %s", doc)
		}
	}
	for _, doc := range []string{`{"seq":18446744073709551615,"actor":{"uid":null},"attrs":null}`, `{"actor":null,"x":[1]}`} {
		if !readertest.Check(t, []byte(doc), new(Record), readertest.Of(readRecord)) {
			t.Errorf("record reader refused %s", doc)
		}
	}
}

// TestLastNewlineEndAcrossChunks: the tail is found as a search of the whole file finds it, for
// lines and torn tails shorter and longer than the chunks it reads back by (4 KB up to 64 KB).
func TestLastNewlineEndAcrossChunks(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	path := filepath.Join(t.TempDir(), "seg")
	for _, lens := range [][]int{{0}, {10}, {5000, 10}, {3, 4095}, {4096}, {4097, 4096}, {70000}, {200000, 5}, {1, 130000}} {
		var data []byte
		for i, n := range lens {
			data = append(data, bytes.Repeat([]byte{byte('a' + rnd.Intn(26))}, n)...)
			if i < len(lens)-1 || rnd.Intn(2) == 0 {
				data = append(data, '\n')
			}
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{len(data), len(data) - 1, len(data) / 2, 4096, 1, 0} {
			if size < 0 || size > len(data) {
				continue
			}
			want := int64(bytes.LastIndexByte(data[:size], '\n') + 1)
			if got, err := lastNewlineEnd(f, int64(size)); err != nil || got != want {
				t.Errorf("lines %v, size %d: lastNewlineEnd = %d, %v; want %d", lens, size, got, err, want)
			}
		}
		f.Close()
	}
}

// TestLastLineAcrossChunks: lastLine gives the line, size and wholeness a search of the whole file
// gives, whether the line and the newline before it are in the file's last 4 KB or not.
func TestLastLineAcrossChunks(t *testing.T) {
	rnd := rand.New(rand.NewSource(3))
	path := filepath.Join(t.TempDir(), "seg")
	for _, lens := range [][]int{{}, {0}, {10}, {0, 0}, {5000, 10}, {3, 4094}, {3, 4095}, {3, 4096}, {4095}, {4096}, {4097, 4096}, {70000}, {200000, 5}, {1, 130000}, {10, 20, 30}} {
		for _, torn := range []bool{false, true} {
			var data []byte
			for i, n := range lens {
				data = append(data, bytes.Repeat([]byte{byte('a' + rnd.Intn(26))}, n)...)
				if i < len(lens)-1 || !torn {
					data = append(data, '\n')
				}
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var want []byte
			end := bytes.LastIndexByte(data, '\n')
			if end >= 0 {
				want = data[bytes.LastIndexByte(data[:end], '\n')+1 : end]
			}
			line, size, whole, err := lastLine(path)
			if err != nil || !bytes.Equal(line, want) || (line == nil) != (want == nil) ||
				size != int64(len(data)) || whole != (end+1 == len(data)) {
				t.Errorf("lines %v, torn %v: lastLine = %d bytes (nil %v), %d, %v, %v; want %d bytes (nil %v), %d, %v",
					lens, torn, len(line), line == nil, size, whole, err, len(want), want == nil, len(data), end+1 == len(data))
			}
		}
	}
	if _, _, _, err := lastLine(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lastLine of a missing file: %v, want os.ErrNotExist", err)
	}
}
