package jsonschema

import (
	"strings"
	"testing"
)

const testSchema = `{
  "type": "object", "additionalProperties": false, "required": ["name", "n"],
  "properties": {
    "name": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$"},
    "n": {"$ref": "#/$defs/u8"},
    "kind": {"enum": ["a", "b"]},
    "v": {"const": "v1"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
  },
  "$defs": {"u8": {"type": "integer", "minimum": 0, "maximum": 255}}
}`

func TestValidate(t *testing.T) {
	s, err := Compile([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	for doc, want := range map[string]string{
		`{"name": "x", "n": 3, "kind": "a", "v": "v1", "tags": ["t"], "labels": {"k": "v"}}`: "",
		`{"name": "x"}`:                             "n: required field is missing",
		`{"name": "x", "n": 3, "extra": 1}`:         "extra: unknown field",
		`{"name": "", "n": 3}`:                      "name: must be at least 1 characters",
		`{"name": "X", "n": 3}`:                     "name: must match",
		`{"name": "x", "n": 3.5}`:                   "n: must be of type integer",
		`{"name": "x", "n": 256}`:                   "n: must be <= 255",
		`{"name": "x", "n": -1}`:                    "n: must be >= 0",
		`{"name": "x", "n": 1, "kind": "c"}`:        "kind: must be one of",
		`{"name": "x", "n": 1, "v": "v2"}`:          "v: must be v1",
		`{"name": "x", "n": 1, "tags": [1]}`:        "tags[0]: must be of type string",
		`{"name": "x", "n": 1, "labels": {"k": 1}}`: "labels.k: must be of type string",
		`[]`:                       "must be of type object, not array",
		`{"name": "x", "n": 1} {}`: "trailing data",
	} {
		err := s.ValidateJSON([]byte(doc))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", doc, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
}

func TestUnsupportedKeywordRefused(t *testing.T) {
	if _, err := Compile([]byte(`{"type": "object", "oneOf": []}`)); err == nil || !strings.Contains(err.Error(), "oneOf") {
		t.Fatalf("Compile accepted an unsupported keyword: %v", err)
	}
}
