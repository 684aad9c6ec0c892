package document

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// decodeEntry reads a stored cache entry as json.Decoder with DisallowUnknownFields reads it into
// a cacheEntry (TestDecodeEntryIsJSON), through a generic decoding (parseJSON, what encoding/json
// decodes into an `any`): decoding into the entry's five struct types built their decoders by
// reflection, ≈ 0.1 ms of every cached start, and encoding/json's own generic decoding was still
// most of a lookup. Anything unexpected is an error, so the entry is a miss.
func decodeEntry(data []byte) (cacheEntry, error) {
	v, err := parseJSON(data)
	if err != nil {
		return cacheEntry{}, err
	}
	var e cacheEntry
	err = fields(v, "entry", func(k string, x any) error {
		var err error
		switch k {
		case "format":
			e.Format, err = str(x, k)
		case "build":
			e.Build, err = str(x, k)
		case "policy":
			e.Policy, err = str(x, k)
		case "input":
			e.Input, err = str(x, k)
		case "without":
			e.Without, err = strs(x, k)
		case "decision":
			e.Decision, err = decodeDecision(x)
		default:
			err = fmt.Errorf("decision cache: unknown field %q", k)
		}
		return err
	})
	return e, err
}

func decodeDecision(v any) (Decision, error) {
	var d Decision
	err := fields(v, "decision", func(k string, x any) error {
		var err error
		switch k {
		case "allow":
			d.Allow, err = boolean(x, k)
		case "reasons":
			d.Reasons, err = decodeReasons(x)
		case "constraints":
			d.Constraints, err = decodeConstraints(x)
		case "revision":
			d.Revision, err = str(x, k)
		case "durationNs":
			var n *int64
			if n, err = integer(x, k); n != nil {
				d.Duration = time.Duration(*n)
			}
		default:
			err = fmt.Errorf("decision cache: unknown field %q", k)
		}
		return err
	})
	return d, err
}

func decodeReasons(v any) ([]Reason, error) {
	if v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, errors.New("decision cache: reasons is not an array")
	}
	out := make([]Reason, len(a))
	for i, x := range a {
		err := fields(x, "reason", func(k string, y any) error {
			var err error
			switch k {
			case "code":
				out[i].Code, err = str(y, k)
			case "message":
				out[i].Message, err = str(y, k)
			case "path":
				out[i].Path, err = str(y, k)
			default:
				err = fmt.Errorf("decision cache: unknown field %q", k)
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeConstraints(v any) (Constraints, error) {
	var c Constraints
	err := fields(v, "constraints", func(k string, x any) error {
		var err error
		switch k {
		case "maxMemory":
			c.MaxMemory, err = integer(x, k)
		case "maxPids":
			c.MaxPids, err = integer(x, k)
		case "capabilities":
			c.Capabilities, err = strs(x, k)
		case "egress":
			c.Egress, err = strs(x, k)
		case "maxNetworkRate":
			c.MaxNetworkRate, err = integer(x, k)
		case "quotas":
			if x == nil {
				return nil
			}
			var q QuotaLimits
			err = fields(x, "quotas", func(k string, y any) error {
				var err error
				switch k {
				case "containers":
					q.Containers, err = integer(y, k)
				case "memory":
					q.Memory, err = integer(y, k)
				case "pids":
					q.Pids, err = integer(y, k)
				case "nanoCPUs":
					q.NanoCPUs, err = integer(y, k)
				case "imagesSize":
					q.ImagesSize, err = integer(y, k)
				default:
					err = fmt.Errorf("decision cache: unknown field %q", k)
				}
				return err
			})
			c.Quotas = &q
		default:
			err = fmt.Errorf("decision cache: unknown field %q", k)
		}
		return err
	})
	return c, err
}

// fields calls f with each key and value of the object v (null: none, as encoding/json leaves a
// struct alone).
func fields(v any, what string, f func(k string, x any) error) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("decision cache: %s is not an object", what)
	}
	for k, x := range m {
		if err := f(k, x); err != nil {
			return err
		}
	}
	return nil
}

func str(v any, k string) (string, error) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("decision cache: %s is not a string", k)
	}
	return s, nil
}

func boolean(v any, k string) (bool, error) {
	if v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("decision cache: %s is not a boolean", k)
	}
	return b, nil
}

// integer is an int64 as encoding/json decodes one into *int64: null is nil, anything but an
// integer in range an error.
func integer(v any, k string) (*int64, error) {
	if v == nil {
		return nil, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("decision cache: %s is not a number", k)
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("decision cache: %s: %w", k, err)
	}
	return &i, nil
}

// strs is a []string as encoding/json decodes one: null is nil, [] an empty, non-nil slice.
func strs(v any, k string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("decision cache: %s is not an array", k)
	}
	out := make([]string, len(a))
	for i, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("decision cache: %s[%d] is not a string", k, i)
		}
		out[i] = s
	}
	return out, nil
}
