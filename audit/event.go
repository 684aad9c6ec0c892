// Package audit keeps Bulwark's tamper-evident audit trail: an append-only, hash-chained JSON-lines
// log of every lifecycle event, with signed checkpoints and a verifier that names the first bad record.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SchemaVersion identifies the record format; it is part of every record and of its hash.
const SchemaVersion = "bulwark.dev/audit/v1"

// Event types: which part of Bulwark an event is about (in the spirit of docker events' Type).
const (
	TypeContainer = "container"
	TypeImage     = "image"
	TypePolicy    = "policy"
	TypeTrust     = "trust"
	TypeEngine    = "engine"
	TypeDaemon    = "daemon"
	TypeAudit     = "audit"
)

// Actor is who caused an event: the requesting uid and, for the daemon, its authenticated principal.
type Actor struct {
	UID       *int   `json:"uid,omitempty"`
	Principal string `json:"principal,omitempty"`
}

// Event is what callers emit. The log adds sequence, time (if unset) and the chain fields.
type Event struct {
	Type        string            `json:"type"`
	Action      string            `json:"action"`
	Actor       Actor             `json:"actor"`
	Tenant      string            `json:"tenant,omitempty"`
	ContainerID string            `json:"container_id,omitempty"`
	ImageDigest string            `json:"image_digest,omitempty"`
	RequestID   string            `json:"request_id,omitempty"`
	Attrs       map[string]string `json:"attrs,omitempty"`
}

// Record is one line of the log: an event plus its place in the chain.
type Record struct {
	Version string `json:"v"`
	Seq     uint64 `json:"seq"`
	// Time is wall-clock time with nanoseconds, UTC.
	Time time.Time `json:"time"`
	Event
	// Prev is the Hash of the record before this one ("" for the first record ever).
	Prev string `json:"prev"`
	// Hash is the hex SHA-256 of this record's canonical encoding with Hash empty.
	Hash string `json:"hash"`
}

// computeHash returns the hex SHA-256 over the record's JSON encoding with Hash cleared. encoding/json
// writes struct fields in declaration order and map keys sorted, so the encoding is canonical
// (appendJSON writes the same bytes). The encoding is written over scratch (from its start, in its
// capacity while it fits), which the caller may reuse.
func (r Record) computeHash(scratch []byte) (string, error) {
	r.Hash = ""
	b, err := r.appendJSON(scratch[:0])
	if err != nil {
		return "", fmt.Errorf("encode record %d: %w", r.Seq, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// seal fills Version, Prev and Hash, encoding the record for its hash over scratch
// (computeHash).
func (r *Record) seal(prev string, scratch []byte) error {
	r.Version = SchemaVersion
	r.Prev = prev
	h, err := r.computeHash(scratch)
	if err != nil {
		return err
	}
	r.Hash = h
	return nil
}

// validUTF8 returns e with every string valid UTF-8 as encoding/json writes it: each byte that is
// not part of a valid sequence becomes U+FFFD (attribute keys that would become one are kept
// apart: validAttrs). A record is hashed over its encoding and verified over the encoding of what
// is read back; were it hashed with the invalid bytes (which the encoding escapes as \ufffd, and
// which read back as the character itself), it would not verify: any event naming a path or a
// client's string of arbitrary bytes would read as an edited record. The caller's Attrs map is
// not changed.
func (e Event) validUTF8() Event {
	valid := func(s string) bool { return utf8.ValidString(s) }
	all := valid(e.Type) && valid(e.Action) && valid(e.Actor.Principal) && valid(e.Tenant) &&
		valid(e.ContainerID) && valid(e.ImageDigest) && valid(e.RequestID)
	for k, v := range e.Attrs {
		all = all && valid(k) && valid(v)
	}
	if all {
		return e
	}
	e.Type, e.Action, e.Actor.Principal = replaceInvalidUTF8(e.Type), replaceInvalidUTF8(e.Action), replaceInvalidUTF8(e.Actor.Principal)
	e.Tenant, e.ContainerID = replaceInvalidUTF8(e.Tenant), replaceInvalidUTF8(e.ContainerID)
	e.ImageDigest, e.RequestID = replaceInvalidUTF8(e.ImageDigest), replaceInvalidUTF8(e.RequestID)
	if e.Attrs != nil {
		e.Attrs = validAttrs(e.Attrs)
	}
	return e
}

// validAttrs is attrs with every key and value valid UTF-8 (replaceInvalidUTF8), on a copy. Keys
// that differ only in their invalid bytes ("k\xff", "k\xfe", and a valid "k\uFFFD") would become
// one key, every value but one lost, and which one kept would depend on the order the map is
// walked in. So a valid key keeps its name, and the others, taken in byte order, each take the
// first free name of: the key with each invalid byte a U+FFFD, the key with each invalid byte
// written out as \xNN (escapeInvalidUTF8), that followed by #2, #3 and so on.
func validAttrs(attrs map[string]string) map[string]string {
	out := make(map[string]string, len(attrs))
	var invalid []string
	for k, v := range attrs {
		if !utf8.ValidString(k) {
			invalid = append(invalid, k)
			continue
		}
		out[k] = replaceInvalidUTF8(v)
	}
	slices.Sort(invalid)
	for _, k := range invalid {
		name := replaceInvalidUTF8(k)
		if _, taken := out[name]; taken {
			escaped := escapeInvalidUTF8(k)
			name = escaped
			for n := 2; ; n++ {
				if _, taken := out[name]; !taken {
					break
				}
				name = escaped + "#" + strconv.Itoa(n)
			}
		}
		out[name] = replaceInvalidUTF8(attrs[k])
	}
	return out
}

// escapeInvalidUTF8 writes each byte of s that is not part of a valid UTF-8 sequence as \xNN
// (two lower-case hex digits): what the byte was stays readable in a key that had to be told
// apart from another (validAttrs).
func escapeInvalidUTF8(s string) string {
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[s[i]>>4])
			b.WriteByte(hexDigits[s[i]&0xF])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// replaceInvalidUTF8 replaces each byte of s that is not part of a valid UTF-8 sequence with
// U+FFFD, as encoding/json does (strings.ToValidUTF8 would replace a run of them with one).
func replaceInvalidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
