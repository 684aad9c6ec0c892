// Package jsonschema validates a decoded JSON document against the small subset of JSON Schema
// (draft 2020-12) that Bulwark's own schemas use, so the schema file stays the single source of
// truth for which request fields are required.
//
// Supported keywords: type, const, enum, properties, required, additionalProperties (boolean or
// schema), items, minLength, minimum, maximum, pattern, and $ref to "#/$defs/NAME". Any other
// keyword is refused when the schema is compiled, so an unsupported constraint is never
// silently ignored.
package jsonschema

import (
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strings"
)

// Schema is one compiled schema node.
type Schema struct {
	types      []string
	constVal   any
	hasConst   bool
	enum       []any
	properties map[string]*Schema
	required   []string
	additional *Schema // nil: anything goes
	closed     bool    // additionalProperties: false
	items      *Schema
	minLength  *int
	minimum    *big.Float
	maximum    *big.Float
	pattern    *regexp.Regexp
	ref        string
	defs       map[string]*Schema // only on the root
}

var known = map[string]bool{
	"$schema": true, "$id": true, "title": true, "description": true, "$defs": true,
	"type": true, "const": true, "enum": true, "properties": true, "required": true,
	"additionalProperties": true, "items": true, "minLength": true, "minimum": true,
	"maximum": true, "pattern": true, "$ref": true,
}

// Compile parses a schema document.
func Compile(data []byte) (*Schema, error) {
	var raw map[string]any
	if err := decode(data, &raw); err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	root, err := compile(raw, "#")
	if err != nil {
		return nil, err
	}
	if defs, ok := raw["$defs"].(map[string]any); ok {
		root.defs = map[string]*Schema{}
		for name, d := range defs {
			m, ok := d.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("schema #/$defs/%s: not an object", name)
			}
			if root.defs[name], err = compile(m, "#/$defs/"+name); err != nil {
				return nil, err
			}
		}
	}
	return root, nil
}

func compile(raw map[string]any, at string) (*Schema, error) {
	s := &Schema{}
	for k, v := range raw {
		if !known[k] {
			return nil, fmt.Errorf("schema %s: unsupported keyword %q", at, k)
		}
		var err error
		switch k {
		case "type":
			switch t := v.(type) {
			case string:
				s.types = []string{t}
			case []any:
				for _, e := range t {
					s.types = append(s.types, fmt.Sprint(e))
				}
			}
		case "const":
			s.constVal, s.hasConst = v, true
		case "enum":
			s.enum, _ = v.([]any)
		case "properties":
			props, _ := v.(map[string]any)
			s.properties = map[string]*Schema{}
			for name, p := range props {
				m, ok := p.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("schema %s/properties/%s: not an object", at, name)
				}
				if s.properties[name], err = compile(m, at+"/properties/"+name); err != nil {
					return nil, err
				}
			}
		case "required":
			for _, r := range v.([]any) {
				s.required = append(s.required, fmt.Sprint(r))
			}
		case "additionalProperties":
			switch a := v.(type) {
			case bool:
				s.closed = !a
			case map[string]any:
				if s.additional, err = compile(a, at+"/additionalProperties"); err != nil {
					return nil, err
				}
			}
		case "items":
			m, _ := v.(map[string]any)
			if s.items, err = compile(m, at+"/items"); err != nil {
				return nil, err
			}
		case "minLength":
			n, _ := v.(json.Number).Int64()
			i := int(n)
			s.minLength = &i
		case "minimum", "maximum":
			f, _, perr := big.ParseFloat(string(v.(json.Number)), 10, 128, big.ToNearestEven)
			if perr != nil {
				return nil, fmt.Errorf("schema %s/%s: %w", at, k, perr)
			}
			if k == "minimum" {
				s.minimum = f
			} else {
				s.maximum = f
			}
		case "pattern":
			if s.pattern, err = regexp.Compile(fmt.Sprint(v)); err != nil {
				return nil, fmt.Errorf("schema %s/pattern: %w", at, err)
			}
		case "$ref":
			s.ref = fmt.Sprint(v)
		}
	}
	return s, nil
}

// Error is a validation failure at a document path such as "mounts[2].source".
type Error struct {
	Path    string
	Message string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ValidateJSON decodes data (numbers kept exact) and validates it; it returns the first
// failure, in document order for required fields.
func (s *Schema) ValidateJSON(data []byte) error {
	var doc any
	if err := decode(data, &doc); err != nil {
		return &Error{Message: fmt.Sprintf("not valid JSON: %v", err)}
	}
	return s.Validate(doc)
}

// Validate checks a document decoded with json.Decoder.UseNumber.
func (s *Schema) Validate(doc any) error {
	return s.validate(s, doc, "")
}

func (s *Schema) validate(root *Schema, v any, path string) error {
	if s.ref != "" {
		name, ok := strings.CutPrefix(s.ref, "#/$defs/")
		def := root.defs[name]
		if !ok || def == nil {
			return &Error{Path: path, Message: fmt.Sprintf("schema reference %s not found", s.ref)}
		}
		if err := def.validate(root, v, path); err != nil {
			return err
		}
	}
	if len(s.types) > 0 && !slices.ContainsFunc(s.types, func(t string) bool { return isType(v, t) }) {
		return &Error{Path: path, Message: fmt.Sprintf("must be of type %s, not %s", strings.Join(s.types, " or "), typeName(v))}
	}
	if s.hasConst && !equal(v, s.constVal) {
		return &Error{Path: path, Message: fmt.Sprintf("must be %v", s.constVal)}
	}
	if s.enum != nil && !slices.ContainsFunc(s.enum, func(e any) bool { return equal(v, e) }) {
		return &Error{Path: path, Message: fmt.Sprintf("must be one of %v", s.enum)}
	}
	switch x := v.(type) {
	case map[string]any:
		return s.validateObject(root, x, path)
	case []any:
		if s.items != nil {
			for i, e := range x {
				if err := s.items.validate(root, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	case string:
		if s.minLength != nil && len([]rune(x)) < *s.minLength {
			return &Error{Path: path, Message: fmt.Sprintf("must be at least %d characters", *s.minLength)}
		}
		if s.pattern != nil && !s.pattern.MatchString(x) {
			return &Error{Path: path, Message: fmt.Sprintf("must match %s", s.pattern)}
		}
	case json.Number:
		f, _, err := big.ParseFloat(string(x), 10, 128, big.ToNearestEven)
		if err != nil {
			return &Error{Path: path, Message: fmt.Sprintf("bad number %s", x)}
		}
		if s.minimum != nil && f.Cmp(s.minimum) < 0 {
			return &Error{Path: path, Message: fmt.Sprintf("must be >= %s", s.minimum.Text('g', -1))}
		}
		if s.maximum != nil && f.Cmp(s.maximum) > 0 {
			return &Error{Path: path, Message: fmt.Sprintf("must be <= %s", s.maximum.Text('g', -1))}
		}
	}
	return nil
}

func (s *Schema) validateObject(root *Schema, x map[string]any, path string) error {
	for _, r := range s.required {
		if _, ok := x[r]; !ok {
			return &Error{Path: join(path, r), Message: "required field is missing"}
		}
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p, ok := s.properties[k]
		switch {
		case ok:
		case s.additional != nil:
			p = s.additional
		case s.closed:
			return &Error{Path: join(path, k), Message: "unknown field"}
		default:
			continue
		}
		if err := p.validate(root, x[k], join(path, k)); err != nil {
			return err
		}
	}
	return nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func isType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, _, err := big.ParseFloat(string(n), 10, 128, big.ToNearestEven)
		return err == nil && f.IsInt()
	}
	return false
}

func typeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func equal(a, b any) bool {
	if na, ok := a.(json.Number); ok {
		nb, ok := b.(json.Number)
		return ok && na == nb
	}
	return reflect.DeepEqual(a, b)
}

func decode(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}
