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
	b = append(b, `{"v":`...)
	b = jsontext.AppendString(b, r.Version)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	t, err := r.Time.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b = append(b, `,"time":`...)
	b = append(b, t...)
	b = append(b, `,"type":`...)
	b = jsontext.AppendString(b, r.Type)
	b = append(b, `,"action":`...)
	b = jsontext.AppendString(b, r.Action)
	b = append(b, `,"actor":{`...)
	if r.Actor.UID != nil {
		b = append(b, `"uid":`...)
		b = strconv.AppendInt(b, int64(*r.Actor.UID), 10)
	}
	if r.Actor.Principal != "" {
		if r.Actor.UID != nil {
			b = append(b, ',')
		}
		b = append(b, `"principal":`...)
		b = jsontext.AppendString(b, r.Actor.Principal)
	}
	b = append(b, '}')
	opt := func(key, v string) {
		if v != "" {
			b = append(b, key...)
			b = jsontext.AppendString(b, v)
		}
	}
	opt(`,"tenant":`, r.Tenant)
	opt(`,"container_id":`, r.ContainerID)
	opt(`,"image_digest":`, r.ImageDigest)
	opt(`,"request_id":`, r.RequestID)
	if len(r.Attrs) > 0 {
		b = append(b, `,"attrs":`...)
		b = jsontext.AppendStringMap(b, r.Attrs)
	}
	b = append(b, `,"prev":`...)
	b = jsontext.AppendString(b, r.Prev)
	b = append(b, `,"hash":`...)
	b = jsontext.AppendString(b, r.Hash)
	return append(b, '}'), nil
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
