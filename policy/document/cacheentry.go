package document

import (
	"errors"
	"strconv"
	"time"
)

// decodeEntry reads a stored cache entry into a cacheEntry as json.Decoder with
// DisallowUnknownFields reads one (TestDecodeEntryIsJSON), straight into its typed fields: a
// generic decoding first (a map per object, an `any` per value) was most of a cached lookup, and
// encoding/json's reflection on the entry's five struct types ≈ 0.1 ms of every cached start.
// It is never more lenient than encoding/json, and stricter where an entry Store writes never
// goes: a key repeated or not in its exact case, a null entry, reason or string in a list is an
// error. Anything unexpected is an error, so
// the entry is a miss.
func decodeEntry(data []byte) (cacheEntry, error) {
	p := jsonParser{data: data}
	if p.null() {
		return cacheEntry{}, errors.New("decision cache: entry is null")
	}
	var e cacheEntry
	err := p.object("entry", func(k []byte) error {
		switch string(k) {
		case "format":
			return p.str(&e.Format)
		case "build":
			return p.str(&e.Build)
		case "policy":
			return p.str(&e.Policy)
		case "input":
			return p.str(&e.Input)
		case "without":
			return p.strs(&e.Without)
		case "decision":
			return p.decision(&e.Decision)
		}
		return p.unknown(k)
	})
	if err != nil {
		return cacheEntry{}, err
	}
	p.space()
	if p.i != len(p.data) {
		return cacheEntry{}, p.fail("data after the entry")
	}
	return e, nil
}

func (p *jsonParser) decision(d *Decision) error {
	return p.object("decision", func(k []byte) error {
		switch string(k) {
		case "allow":
			return p.boolean(&d.Allow)
		case "reasons":
			return p.reasons(&d.Reasons)
		case "constraints":
			return p.constraints(&d.Constraints)
		case "revision":
			return p.str(&d.Revision)
		case "durationNs":
			var n *int64
			err := p.integer(&n)
			if n != nil {
				d.Duration = time.Duration(*n)
			}
			return err
		}
		return p.unknown(k)
	})
}

// reasons is a []Reason as encoding/json decodes one: null is nil, [] an empty, non-nil slice.
func (p *jsonParser) reasons(out *[]Reason) error {
	if p.null() {
		*out = nil
		return nil
	}
	rs := []Reason{}
	err := p.array("reasons", func() error {
		if p.null() {
			return errors.New("decision cache: null in reasons")
		}
		var r Reason
		err := p.object("reason", func(k []byte) error {
			switch string(k) {
			case "code":
				return p.str(&r.Code)
			case "message":
				return p.str(&r.Message)
			case "path":
				return p.str(&r.Path)
			}
			return p.unknown(k)
		})
		rs = append(rs, r)
		return err
	})
	*out = rs
	return err
}

func (p *jsonParser) constraints(c *Constraints) error {
	return p.object("constraints", func(k []byte) error {
		switch string(k) {
		case "maxMemory":
			return p.integer(&c.MaxMemory)
		case "maxPids":
			return p.integer(&c.MaxPids)
		case "capabilities":
			return p.strs(&c.Capabilities)
		case "egress":
			return p.strs(&c.Egress)
		case "maxNetworkRate":
			return p.integer(&c.MaxNetworkRate)
		case "quotas":
			if p.null() {
				c.Quotas = nil
				return nil
			}
			q := &QuotaLimits{}
			c.Quotas = q
			return p.object("quotas", func(k []byte) error {
				switch string(k) {
				case "containers":
					return p.integer(&q.Containers)
				case "memory":
					return p.integer(&q.Memory)
				case "pids":
					return p.integer(&q.Pids)
				case "nanoCPUs":
					return p.integer(&q.NanoCPUs)
				case "imagesSize":
					return p.integer(&q.ImagesSize)
				}
				return p.unknown(k)
			})
		}
		return p.unknown(k)
	})
}

func (p *jsonParser) unknown(k []byte) error {
	return errors.New("decision cache: unknown field " + strconv.Quote(string(k)))
}

// maxFields bounds the keys of one object of an entry (its largest has six): with each key
// allowed once, a longer object has an unknown or repeated one.
const maxFields = 8

// object reads an object, null (no change, as encoding/json leaves a struct alone) or fails:
// field is called with each key, the parser before its value, and reads the value. A key is
// given as its decoded text, only for the call; a key that comes twice is an error.
func (p *jsonParser) object(what string, field func(k []byte) error) error {
	if p.null() {
		return nil
	}
	if !p.consume('{') {
		return errors.New("decision cache: " + what + " is not an object")
	}
	if p.consume('}') {
		return nil
	}
	var seen [maxFields]string
	for n := 0; ; n++ {
		p.space()
		if p.i == len(p.data) || p.data[p.i] != '"' {
			return p.fail("object key expected")
		}
		k, err := p.key()
		if err != nil {
			return err
		}
		if n == maxFields {
			return errors.New("decision cache: " + what + " has too many fields")
		}
		for _, s := range seen[:n] {
			if s == string(k) {
				return errors.New("decision cache: field " + strconv.Quote(s) + " repeated")
			}
		}
		if !p.consume(':') {
			return p.fail("colon expected")
		}
		if err := field(k); err != nil {
			return err
		}
		// The key's text outlives this iteration only as a known field's name (an unknown one
		// has failed): a constant, so keeping it allocates nothing.
		seen[n] = internKey(k)
		switch {
		case p.consume(','):
		case p.consume('}'):
			return nil
		default:
			return p.fail("comma or } expected")
		}
	}
}

// internKey returns the constant field name k spells (field has accepted it), so a key read
// from the entry is never copied.
func internKey(k []byte) string {
	for _, s := range fieldNames {
		if s == string(k) {
			return s
		}
	}
	return string(k)
}

var fieldNames = [...]string{"format", "build", "policy", "input", "without", "decision", "allow", "reasons",
	"constraints", "revision", "durationNs", "code", "message", "path", "maxMemory", "maxPids", "capabilities",
	"egress", "maxNetworkRate", "quotas", "containers", "memory", "pids", "nanoCPUs", "imagesSize"}

// key reads an object key: its bytes in the entry when it has no escape and is plain ASCII (every
// key Store writes), else its decoded text.
func (p *jsonParser) key() ([]byte, error) {
	start := p.i + 1
	for j := start; j < len(p.data); j++ {
		c := p.data[j]
		if c == '"' {
			p.i = j + 1
			return p.data[start:j], nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			break
		}
	}
	s, err := p.string()
	return []byte(s), err
}

// array reads an array, calling elem with the parser before each element.
func (p *jsonParser) array(what string, elem func() error) error {
	if !p.consume('[') {
		return errors.New("decision cache: " + what + " is not an array")
	}
	if p.consume(']') {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch {
		case p.consume(','):
		case p.consume(']'):
			return nil
		default:
			return p.fail("comma or ] expected")
		}
	}
}

// consume skips white space and then c, if c is next.
func (p *jsonParser) consume(c byte) bool {
	p.space()
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// literal consumes lit (null, true, false) if it is next.
func (p *jsonParser) literal(lit string) bool {
	p.space()
	if len(p.data)-p.i >= len(lit) && string(p.data[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}

func (p *jsonParser) null() bool { return p.literal("null") }

// str reads a string; null leaves it unchanged, as encoding/json does.
func (p *jsonParser) str(s *string) error {
	if p.null() {
		return nil
	}
	p.space()
	if p.i == len(p.data) || p.data[p.i] != '"' {
		return errors.New("decision cache: a string expected at offset " + strconv.Itoa(p.i))
	}
	v, err := p.string()
	*s = v
	return err
}

// boolean reads true or false; null leaves it unchanged.
func (p *jsonParser) boolean(b *bool) error {
	switch {
	case p.null():
	case p.literal("true"):
		*b = true
	case p.literal("false"):
		*b = false
	default:
		return errors.New("decision cache: a boolean expected at offset " + strconv.Itoa(p.i))
	}
	return nil
}

// integer reads an int64 as encoding/json decodes one into *int64: null is nil, anything but an
// integer in range an error.
func (p *jsonParser) integer(n **int64) error {
	if p.null() {
		*n = nil
		return nil
	}
	p.space()
	if p.i == len(p.data) || p.data[p.i] != '-' && (p.data[p.i] < '0' || p.data[p.i] > '9') {
		return errors.New("decision cache: a number expected at offset " + strconv.Itoa(p.i))
	}
	text, err := p.number()
	if err != nil {
		return err
	}
	i, err := strconv.ParseInt(string(text), 10, 64)
	if err != nil {
		return errors.New("decision cache: not an int64 at offset " + strconv.Itoa(p.i) + ": " + err.Error())
	}
	*n = &i
	return nil
}

// strs reads a []string as encoding/json decodes one: null is nil, [] an empty, non-nil slice.
func (p *jsonParser) strs(out *[]string) error {
	if p.null() {
		*out = nil
		return nil
	}
	ss := []string{}
	err := p.array("a list of strings", func() error {
		var s string
		if p.null() {
			return errors.New("decision cache: null in a list of strings")
		}
		err := p.str(&s)
		ss = append(ss, s)
		return err
	})
	*out = ss
	return err
}
