package image

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Ref is a parsed image reference: NAME[:TAG][@DIGEST]. NAME may carry a registry host.
type Ref struct {
	Name   string
	Tag    string
	Digest digest.Digest
}

// ParseRef parses s; a reference with neither tag nor digest gets the tag "latest".
func ParseRef(s string) (Ref, error) {
	var r Ref
	rest := s
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		d, err := digest.Parse(rest[i+1:])
		if err != nil {
			return r, fmt.Errorf("reference %q: %w", s, err)
		}
		if err := checkDigest(d); err != nil {
			return r, fmt.Errorf("reference %q: %w", s, err)
		}
		r.Digest, rest = d, rest[:i]
	}
	// A colon after the last slash separates the tag; one before it is a registry port.
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		r.Tag, rest = rest[i+1:], rest[:i]
		if len(r.Tag) > 128 || !validTag(r.Tag) {
			return r, fmt.Errorf("reference %q: invalid tag %q", s, r.Tag)
		}
	}
	if rest == "" || len(rest) > 255 || !validName(rest) {
		return r, fmt.Errorf("reference %q: invalid name %q", s, rest)
	}
	r.Name = rest
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r, nil
}

// String is the canonical form: NAME:TAG, or NAME@DIGEST when there is no tag.
func (r Ref) String() string {
	if r.Tag != "" {
		return r.Name + ":" + r.Tag
	}
	return r.Name + "@" + r.Digest.String()
}
