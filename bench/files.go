package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// mode is a permission mask written in octal in the catalog ("0644").
type mode uint32

func (m *mode) UnmarshalJSON(b []byte) error {
	var s string
	if err := jsonString(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("mode %q: want octal permission bits", s)
	}
	*m = mode(v)
	return nil
}

func jsonString(b []byte, s *string) error { return json.Unmarshal(b, s) }

// ModeWithin reports whether perm grants nothing beyond max, compared as bit masks: 0622 is
// not within 0644 (it adds group and other write) although 622 < 644 as numbers.
func ModeWithin(perm, max uint32) bool { return perm&^max == 0 }

// fileRule is the params of a files.mode control.
type fileRule struct {
	// Paths are globs below the state root ({exe}: the bulwark binary, absolute).
	Paths   []string `json:"paths"`
	MaxMode mode     `json:"maxMode"`
	// Owner is the uid every file must belong to.
	Owner uint32 `json:"owner"`
	// Kind is "file" or "dir": what the paths must be.
	Kind string `json:"kind"`
}

// probeFileModes checks every file a control's globs match: its kind, its owner, its mode as
// a bit mask, and that it is not a symbolic link (which would make the check about another file).
func probeFileModes(e *Env, c *Control) Outcome {
	var r fileRule
	if err := c.params(&r); err != nil {
		return fail("%v", err)
	}
	var bad, seen []string
	for _, g := range r.Paths {
		pat := e.expand(g)
		if pat == "" {
			continue
		}
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(e.Root, pat)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return fail("%s: %v", g, err)
		}
		for _, p := range matches {
			rel := p
			if r, err := filepath.Rel(e.Root, p); err == nil && !strings.HasPrefix(r, "..") {
				rel = r
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return e.errOutcome(c, err)
			}
			seen = append(seen, rel)
			if msg := checkFile(fi, r); msg != "" {
				bad = append(bad, rel+": "+msg)
			}
		}
	}
	switch {
	case len(bad) > 0:
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%d of %d files exceed %04o or are not owned by uid %d", len(bad), len(seen), uint32(r.MaxMode), r.Owner), Details: bad}
	case len(seen) == 0:
		return skip("no such files")
	}
	return Outcome{Status: Pass, Actual: fmt.Sprintf("%d files within %04o, owned by uid %d", len(seen), uint32(r.MaxMode), r.Owner), Details: seen}
}

// checkFile says what is wrong with one file, "" if nothing.
func checkFile(fi os.FileInfo, r fileRule) string {
	st := fi.Sys().(*syscall.Stat_t)
	perm := uint32(fi.Mode().Perm())
	if fi.Mode()&os.ModeSetuid != 0 {
		perm |= 0o4000
	}
	if fi.Mode()&os.ModeSetgid != 0 {
		perm |= 0o2000
	}
	if fi.Mode()&os.ModeSticky != 0 {
		perm |= 0o1000
	}
	var msgs []string
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return "a symbolic link"
	case r.Kind == "dir" && !fi.IsDir():
		msgs = append(msgs, "not a directory")
	case r.Kind == "file" && !fi.Mode().IsRegular():
		msgs = append(msgs, "not a regular file")
	}
	if !ModeWithin(perm, uint32(r.MaxMode)) {
		msgs = append(msgs, fmt.Sprintf("mode %04o exceeds %04o by %04o", perm, uint32(r.MaxMode), perm&^uint32(r.MaxMode)))
	}
	if st.Uid != r.Owner {
		msgs = append(msgs, fmt.Sprintf("owner uid %d", st.Uid))
	}
	return strings.Join(msgs, ", ")
}
