package seccomp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
)

// A cache entry on disk is the format's name and a newline, then the fields, each a uvarint
// length before its bytes — digest, libseccomp version, architecture — then the flags (a
// uvarint), the number of notes (a uvarint) and each note, the BPF program; last, the SHA-256 of
// every byte before it. It was JSON: decoding it, encoding/json's first use in the process,
// reflection and base64 included, was most of what a cache hit cost every start.

// marshal writes e as an entry on disk.
func (e cacheEntry) marshal() []byte {
	b := append([]byte(e.Format), '\n')
	b = appendField(b, []byte(e.Digest))
	b = appendField(b, []byte(e.Libseccomp))
	b = appendField(b, []byte(e.Arch))
	b = binary.AppendUvarint(b, uint64(e.Flags))
	b = binary.AppendUvarint(b, uint64(len(e.Notes)))
	for _, n := range e.Notes {
		b = appendField(b, []byte(n))
	}
	b = appendField(b, e.BPF)
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

func appendField(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// parseEntry reads an entry marshal wrote; ok is false for anything else: torn, corrupted,
// trailing bytes or another layout. BPF shares data's memory.
func parseEntry(data []byte) (e cacheEntry, ok bool) {
	if len(data) < sha256.Size {
		return e, false
	}
	body := data[:len(data)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[len(body):]) {
		return e, false
	}
	format, rest, found := bytes.Cut(body, []byte{'\n'})
	if !found {
		return e, false
	}
	r := entryReader{b: rest}
	e.Format = string(format)
	e.Digest = string(r.field())
	e.Libseccomp = string(r.field())
	e.Arch = string(r.field())
	e.Flags = uint(r.uvarint())
	n := r.uvarint()
	if n > uint64(len(r.b)) { // each note takes a byte at least
		return cacheEntry{}, false
	}
	for range n {
		e.Notes = append(e.Notes, string(r.field()))
	}
	e.BPF = r.field()
	if r.bad || len(r.b) != 0 {
		return cacheEntry{}, false
	}
	return e, true
}

// entryReader reads an entry's fields; past the first malformed one, bad is set and every read
// returns nothing.
type entryReader struct {
	b   []byte
	bad bool
}

func (r *entryReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *entryReader) field() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
