package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/atomicfile"
)

// What owning an image means. The image store is the state root's, shared: every tenant sees
// every image and may run any (trust and the run policy decide each run). An image reference a
// tenant pulled through the daemon is held by that tenant (several tenants may hold the same
// reference); a reference no tenant holds — put in the store with the bulwark CLI, or whose
// holders all removed it while containers still used it — is the operator's. A tenant may remove
// (docker rmi) only a reference it holds, and then only its hold: the reference leaves the store
// when no tenant holds it any more and no container of any tenant uses it. So one tenant's rmi
// never takes an image from under another tenant, and says nothing about others' containers.

// holds is the record of which tenants hold which references, <root>/daemon/images.json.
type holds struct {
	path string

	mu sync.Mutex // guards the file
}

type holdsFile struct {
	Holders map[string][]string `json:"holders"` // normalized reference → tenants
}

func (h *holds) read() (*holdsFile, error) {
	f := &holdsFile{Holders: map[string][]string{}}
	b, err := os.ReadFile(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image holders: %w", err)
	}
	if err := json.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("image holders %s: %w", h.path, err)
	}
	if f.Holders == nil {
		f.Holders = map[string][]string{}
	}
	return f, nil
}

func (h *holds) write(f *holdsFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(h.path, b, atomicfile.Options{}); err != nil {
		return fmt.Errorf("image holders: %w", err)
	}
	return nil
}

// holders returns the tenants holding ref.
func (h *holds) holders(ref string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := h.read()
	if err != nil {
		return nil, err
	}
	return f.Holders[ref], nil
}

// add records that tenant holds ref.
func (h *holds) add(ref, tenant string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := h.read()
	if err != nil {
		return err
	}
	if slices.Contains(f.Holders[ref], tenant) {
		return nil
	}
	f.Holders[ref] = append(f.Holders[ref], tenant)
	return h.write(f)
}

// drop ends tenant's hold on ref and returns the tenants still holding it.
func (h *holds) drop(ref, tenant string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := h.read()
	if err != nil {
		return nil, err
	}
	left := slices.DeleteFunc(slices.Clone(f.Holders[ref]), func(t string) bool { return t == tenant })
	if len(left) == 0 {
		delete(f.Holders, ref)
	} else {
		f.Holders[ref] = left
	}
	return left, h.write(f)
}

// release ends every hold on ref (an operator removes it).
func (h *holds) release(ref string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, err := h.read()
	if err != nil {
		return err
	}
	delete(f.Holders, ref)
	return h.write(f)
}

// imageOwner resolves the reference an image route names (a reference, or an image id whose image
// has one) and says which tenant owns it for who: who's tenant when it holds it, else a tenant
// that does, else the operator's tenant.
func (s *Server) imageOwner(name string, who config.Principal) (ref, owner string, err error) {
	found, tags, err := s.findImage(name)
	if err != nil {
		return "", "", err
	}
	ref = normalized(found.ref)
	if n := normalized(name); slices.ContainsFunc(tags, func(t string) bool { return normalized(t) == n }) {
		ref = n
	} else if !strings.Contains(name, ":") && slices.Contains(tags, normalized(name+":latest")) {
		ref = normalized(name + ":latest")
	} else if len(tags) > 1 {
		return "", "", errdefs.Errorf(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", name)
	}
	holders, err := s.holds.holders(ref)
	if err != nil {
		return "", "", err
	}
	switch {
	case slices.Contains(holders, who.Tenant):
		return ref, who.Tenant, nil
	case len(holders) > 0:
		return ref, holders[0], nil
	}
	return ref, s.cfg.OperatorTenant, nil
}

func openHolds(daemonDir string) *holds { return &holds{path: filepath.Join(daemonDir, "images.json")} }
