package runcgate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/policy/document"
)

// OCI hooks are host programs the caller (containerd, Docker: root) asks the runtime to run
// around a container's lifecycle — Docker's libnetwork-setkey, which plugs the container into
// its bridge, is one. They run outside every layer of the floor, so bulwark-runc runs one only
// when policy allows it: the request document lists each hook with the real path and sha256
// digest of the file it opened (hook_allowlist in the default policy), and a hook that is not
// allowed refuses the whole create with the reason. None is dropped in silence.
//
// Where each phase runs (the runtime spec's lifecycle; "the runtime namespace" is the host's):
//
//	prestart, createRuntime  during create, once the container's namespaces exist and its
//	                         process waits for start; a failure deletes the container
//	poststart                after start; a failure is logged, the container keeps running
//	poststop                 after delete; a failure is logged
//
// createContainer and startContainer hooks are refused whatever policy says: the spec runs them
// inside the container's namespaces, where a host program would run as the host's root with the
// container's filesystem (its loader and libraries) under it — or else under the floor, where it
// could not do what a hook is for.

// Hook phases, as the runtime spec names them.
const (
	PhasePrestart        = "prestart"
	PhaseCreateRuntime   = "createRuntime"
	PhaseCreateContainer = "createContainer"
	PhaseStartContainer  = "startContainer"
	PhasePoststart       = "poststart"
	PhasePoststop        = "poststop"
)

// DefaultHookTimeout bounds a hook whose spec sets no timeout: a hook that hangs must not hang
// the caller (containerd waits for create) for ever.
const DefaultHookTimeout = 30

// Hook is one hook bulwark-runc runs: as the spec names it, the real path of the file opened at
// its path and that file's digest (what policy decided on).
type Hook struct {
	Phase string `json:"phase"`
	specs.Hook
	Resolved string `json:"resolved"`
	SHA256   string `json:"sha256"`

	// file is the descriptor that was hashed, kept open so that exactly what was decided on is
	// executed (nil for a hook read back from a record until it is opened again).
	file *os.File
}

// Hooks are a container's hooks, in the spec's order within each phase.
type Hooks []*Hook

// inspectHooks opens and hashes every hook of h. A createContainer or startContainer hook, a
// relative path or a file that is not an executable regular file is an error (a refusal).
func inspectHooks(h *specs.Hooks) (hs Hooks, err error) {
	if h == nil {
		return nil, nil
	}
	if len(h.CreateContainer) > 0 || len(h.StartContainer) > 0 {
		return nil, errors.New("createContainer and startContainer hooks are refused: the runtime spec runs them inside " +
			"the container's namespaces, where a host program would run as the host's root over the container's " +
			"filesystem; bulwark-runc runs hooks only on the host (prestart, createRuntime, poststart, poststop)")
	}
	defer func() {
		if err != nil {
			hs.Close()
		}
	}()
	//nolint:staticcheck // Prestart is deprecated in the spec, and still what Docker 20.10 uses.
	phases := []struct {
		name  string
		hooks []specs.Hook
	}{{PhasePrestart, h.Prestart}, {PhaseCreateRuntime, h.CreateRuntime}, {PhasePoststart, h.Poststart}, {PhasePoststop, h.Poststop}}
	for _, p := range phases {
		for i, sh := range p.hooks {
			hk := &Hook{Phase: p.name, Hook: sh}
			if err := hk.open(); err != nil {
				return hs, fmt.Errorf("hooks.%s[%d]: %w", p.name, i, err)
			}
			hs = append(hs, hk)
		}
	}
	return hs, nil
}

// open opens the hook's path and hashes what it opened.
func (h *Hook) open() error {
	if !filepath.IsAbs(h.Path) {
		return fmt.Errorf("hook path %q is not absolute", h.Path)
	}
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("hook %s: timeout %d: must be greater than zero", h.Path, *h.Timeout)
	}
	f, err := os.OpenFile(h.Path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("open hook: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && (!fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0) {
		err = fmt.Errorf("%s is not an executable regular file (mode %s)", h.Path, fi.Mode())
	}
	var resolved string
	if err == nil {
		// The real path of the file opened: Docker names its binary as /proc/<pid>/exe.
		resolved, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	}
	sum := sha256.New()
	if err == nil {
		_, err = io.Copy(sum, f)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("hook %s: %w", h.Path, err)
	}
	h.file, h.Resolved, h.SHA256 = f, resolved, hex.EncodeToString(sum.Sum(nil))
	return nil
}

// Close closes the hooks' descriptors.
func (hs Hooks) Close() {
	for _, h := range hs {
		if h.file != nil {
			h.file.Close()
			h.file = nil
		}
	}
}

// Phase returns the hooks of one phase, in order.
func (hs Hooks) Phase(phase string) Hooks {
	var out Hooks
	for _, h := range hs {
		if h.Phase == phase {
			out = append(out, h)
		}
	}
	return out
}

// policyHooks is how the request document shows the hooks.
func (hs Hooks) policyHooks() []document.Hook {
	out := make([]document.Hook, len(hs))
	for i, h := range hs {
		args := slices.Clone(h.Args)
		if args == nil {
			args = []string{}
		}
		out[i] = document.Hook{Phase: h.Phase, Path: h.Path, Resolved: h.Resolved, SHA256: h.SHA256, Args: args}
	}
	return out
}

// SaveHooks records the decided hooks at path, for the start (poststart) and delete (poststop)
// of the container, which are other processes; with no hooks it removes any record left there.
func SaveHooks(path string, hs Hooks) error {
	if len(hs) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove hook record: %w", err)
		}
		return nil
	}
	b, err := json.Marshal(hs)
	if err != nil {
		return fmt.Errorf("encode hook record: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("hook record: %w", err)
	}
	if err := atomicfile.Write(path, b, atomicfile.Options{Perm: 0o600}); err != nil {
		return fmt.Errorf("write hook record: %w", err)
	}
	return nil
}

// LoadHooks reads the record SaveHooks wrote (none: no hooks). Each hook is opened and hashed
// again when it runs, and runs only if it is still the file policy decided on.
func LoadHooks(path string) (Hooks, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read hook record: %w", err)
	}
	var hs Hooks
	if err := json.Unmarshal(b, &hs); err != nil {
		return nil, fmt.Errorf("parse hook record %s: %w", path, err)
	}
	return hs, nil
}

// reopen opens a recorded hook again and checks it is the file that was decided on.
func (h *Hook) reopen() error {
	want := *h
	if err := h.open(); err != nil {
		return err
	}
	if h.Resolved != want.Resolved || h.SHA256 != want.SHA256 {
		got := fmt.Sprintf("%s (sha256 %s)", h.Resolved, h.SHA256)
		h.file.Close()
		h.file, h.Resolved, h.SHA256 = nil, want.Resolved, want.SHA256
		return fmt.Errorf("hook %s is now %s, not %s (sha256 %s) as decided at create: refused", h.Path, got, want.Resolved, want.SHA256)
	}
	return nil
}
