package audit

import (
	"strconv"

	"bulwark.dev/bulwark/internal/jsontext"
)

// appendJSON appends r as json.Marshal writes it, byte for byte (TestRecordJSONIsEncodingJSON,
// which also fails when a field is added to Record or below it): the chain's hash is over these
// bytes, and verify compares each line with json.Marshal's encoding of what it decodes. Encoded
// by hand because encoding/json's first Marshal of a Record in a process builds its encoders by
// reflection, and a bulwark run's first append (its decision's records) is made beside its
// sandbox's creation, taking a core from it on a host of two (issue 14). A time json.Marshal
// cannot write (a year past 9999) is its error here too.
func (r *Record) appendJSON(b []byte) ([]byte, error) {
	w := &jsontext.Writer{B: b}
	n := w.Object()
	w.Key(n, "v")
	w.String(r.Version)
	w.Key(n, "seq")
	w.Uint(r.Seq)
	w.Key(n, "time")
	w.Time(r.Time)
	w.Key(n, "type")
	w.String(r.Type)
	w.Key(n, "action")
	w.String(r.Action)
	w.Key(n, "actor")
	a := w.Object()
	if r.Actor.UID != nil {
		w.Key(a, "uid")
		w.Int(int64(*r.Actor.UID))
	}
	if r.Actor.Principal != "" {
		w.Key(a, "principal")
		w.String(r.Actor.Principal)
	}
	w.EndObject()
	if r.Tenant != "" {
		w.Key(n, "tenant")
		w.String(r.Tenant)
	}
	if r.ContainerID != "" {
		w.Key(n, "container_id")
		w.String(r.ContainerID)
	}
	if r.ImageDigest != "" {
		w.Key(n, "image_digest")
		w.String(r.ImageDigest)
	}
	if r.RequestID != "" {
		w.Key(n, "request_id")
		w.String(r.RequestID)
	}
	if len(r.Attrs) > 0 {
		w.Key(n, "attrs")
		w.StringMap(r.Attrs)
	}
	w.Key(n, "prev")
	w.String(r.Prev)
	w.Key(n, "hash")
	w.String(r.Hash)
	w.EndObject()
	return w.Bytes()
}

// The keys of a record and of its actor, as encoding/json names their fields.
var (
	recordKeys = []string{"v", "seq", "time", "type", "action", "actor", "tenant", "container_id", "image_digest", "request_id", "attrs", "prev", "hash"}
	actorKeys  = []string{"uid", "principal"}
)

// readRecord reads a record as json.Unmarshal does where it can (jsontext.Decode): the log's
// last record, read by the first append of a process, whose first json.Unmarshal of a Record
// built its decoders by reflection (issue 14).
func readRecord(r *jsontext.Reader, v *Record) bool {
	return r.Object(recordKeys, func(key string) bool {
		switch key {
		case "v":
			return r.String(&v.Version)
		case "seq":
			return r.Uint(&v.Seq, 64)
		case "time":
			return r.Time(&v.Time)
		case "type":
			return r.String(&v.Type)
		case "action":
			return r.String(&v.Action)
		case "actor":
			return readActor(r, &v.Actor)
		case "tenant":
			return r.String(&v.Tenant)
		case "container_id":
			return r.String(&v.ContainerID)
		case "image_digest":
			return r.String(&v.ImageDigest)
		case "request_id":
			return r.String(&v.RequestID)
		case "attrs":
			return r.StringMap(&v.Attrs)
		case "prev":
			return r.String(&v.Prev)
		default: // hash
			return r.String(&v.Hash)
		}
	})
}

func readActor(r *jsontext.Reader, v *Actor) bool {
	return r.Object(actorKeys, func(key string) bool {
		if key == "principal" {
			return r.String(&v.Principal)
		}
		if r.Null() {
			v.UID = nil
			return true
		}
		var n int64
		if !r.Int(&n, strconv.IntSize) {
			return false
		}
		uid := int(n)
		v.UID = &uid
		return true
	})
}

// checkpointKeys are a checkpoint's keys, as encoding/json names its fields.
var checkpointKeys = []string{"v", "seq", "hash", "time", "public_key", "sig"}

// readCheckpoint reads a checkpoint as json.Unmarshal does where it can (jsontext.Decode): every
// first append of a process reads them all (the latest says when the next is due).
func readCheckpoint(r *jsontext.Reader, v *Checkpoint) bool {
	return r.Object(checkpointKeys, func(key string) bool {
		switch key {
		case "v":
			return r.String(&v.Version)
		case "seq":
			return r.Uint(&v.Seq, 64)
		case "hash":
			return r.String(&v.Hash)
		case "time":
			return r.Time(&v.Time)
		case "public_key":
			return r.String(&v.PublicKey)
		default: // sig
			return r.String(&v.Signature)
		}
	})
}
