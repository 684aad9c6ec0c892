package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// BadRecordError names the first record that breaks the chain.
type BadRecordError struct {
	Segment string
	Line    int
	Seq     uint64 // the sequence number expected at that place
	Reason  string
}

func (e *BadRecordError) Error() string {
	return fmt.Sprintf("audit chain broken at %s line %d (expected seq %d): %s", e.Segment, e.Line, e.Seq, e.Reason)
}

// TornTailError reports that the newest segment ends in a partial record: a write that never
// finished (a crash, ENOSPC), not tampering. Every record before it verified. Log.Repair, or the
// next append, cuts it (keeping its bytes under torn/) and records the repair in the chain.
type TornTailError struct {
	Segment string
	Line    int
	Bytes   int // length of the partial record
}

func (e *TornTailError) Error() string {
	return fmt.Sprintf("audit log has a torn tail: %s line %d is a partial record (%d bytes) left by an "+
		"interrupted write, not tampering; every record before it verified", e.Segment, e.Line, e.Bytes)
}

// Report summarises a successful verification.
type Report struct {
	Records     uint64 `json:"records"`
	LastSeq     uint64 `json:"last_seq"`
	LastHash    string `json:"last_hash"`
	Checkpoints int    `json:"checkpoints"`
	Anchored    bool   `json:"anchored"`
	// Repaired is the record of a torn-tail repair VerifyAndRepair made, nil if none.
	Repaired *Record `json:"repaired,omitempty"`
}

// VerifyAndRepair is Verify, except that a torn tail (TornTailError) is repaired as an append
// would repair it and the log is then verified again. Anything else is reported, never repaired.
func VerifyAndRepair(dir string, anchor *Checkpoint) (Report, error) {
	rep, err := Verify(dir, anchor)
	var torn *TornTailError
	if !errors.As(err, &torn) {
		return rep, err
	}
	l, err := Open(dir, Options{})
	if err != nil {
		return rep, fmt.Errorf("%w; repair: %w", torn, err)
	}
	defer l.Close()
	repaired, err := l.Repair()
	if err != nil {
		return rep, fmt.Errorf("%w; repair: %w", torn, err)
	}
	rep, err = Verify(dir, anchor)
	rep.Repaired = repaired
	return rep, err
}

// Verify checks the whole chain in dir: every record's hash, sequence and link to the one before,
// then every checkpoint's signature and that the chain still holds the hash it signed. With an
// anchor (a checkpoint exported earlier and kept elsewhere), its key is the trusted one and a log
// that no longer reaches the anchor's record — a truncated tail — fails. Verify only reads: a torn
// tail is returned as a *TornTailError once everything before it has verified.
func Verify(dir string, anchor *Checkpoint) (Report, error) {
	var rep Report
	hashes := map[uint64]string{}
	prev := ""
	var torn *TornTailError
	err := readRecords(dir, func(l segmentLine) error {
		want := rep.LastSeq + 1
		raw := l.Raw
		bad := func(format string, args ...any) error {
			return &BadRecordError{Segment: l.Segment, Line: l.Line, Seq: want, Reason: fmt.Sprintf(format, args...)}
		}
		if l.Cut {
			if !l.LastSegment {
				return bad("partial record at the end of a segment that is not the newest (segment cut)")
			}
			torn = &TornTailError{Segment: l.Segment, Line: l.Line, Bytes: len(raw)}
			return nil
		}
		var r Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return bad("not a record: %v", err)
		}
		if r.Version != SchemaVersion {
			return bad("unknown schema version %q", r.Version)
		}
		if r.Seq != want {
			return bad("sequence %d out of order (record deleted, inserted or reordered)", r.Seq)
		}
		if r.Prev != prev {
			return bad("previous-hash link does not match record %d", want-1)
		}
		h, err := r.computeHash(make([]byte, 0, 512))
		if err != nil {
			return bad("%v", err)
		}
		if h != r.Hash {
			return bad("content does not match its hash (record edited)")
		}
		// The hash covers the decoded fields; the raw line must also be their exact encoding, so
		// an edit to something decoding ignores (a key's spelling, spacing) is caught too.
		if canon, err := json.Marshal(r); err != nil || !bytes.Equal(canon, raw) {
			return bad("record is not in canonical form (record edited)")
		}
		hashes[r.Seq] = r.Hash
		prev, rep.LastSeq, rep.LastHash = r.Hash, r.Seq, r.Hash
		rep.Records++
		return nil
	})
	if err != nil {
		return rep, err
	}
	pub, err := trustedKey(dir, anchor)
	if err != nil {
		return rep, err
	}
	ckpts, err := Checkpoints(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, err
	}
	if anchor != nil {
		ckpts = append(ckpts, *anchor)
		rep.Anchored = true
	}
	for _, c := range ckpts {
		if err := c.verifySignature(pub); err != nil {
			return rep, err
		}
		if c.Seq == 0 {
			continue
		}
		got, ok := hashes[c.Seq]
		if !ok {
			return rep, fmt.Errorf("checkpoint %d: the log ends at record %d (tail truncated)", c.Seq, rep.LastSeq)
		}
		if got != c.Hash {
			return rep, fmt.Errorf("checkpoint %d: record %d no longer has the signed hash (log rewritten)", c.Seq, c.Seq)
		}
		rep.Checkpoints++
	}
	if torn != nil {
		return rep, torn
	}
	return rep, nil
}

// trustedKey is the anchor's key when there is an anchor, else the log's own public key.
func trustedKey(dir string, anchor *Checkpoint) (ed25519.PublicKey, error) {
	if anchor != nil {
		return decodePublicKey(anchor.PublicKey)
	}
	return PublicKey(dir)
}
