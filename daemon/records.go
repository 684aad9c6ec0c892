package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/daemon/config"
	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/atomicfile"
)

// record is the daemon's own record of a container it created, <root>/daemon/containers/<id>.json:
// its owner, its per-tenant name, what the client asked (shown back by inspect) and the engine
// request it maps to. The engine's container id is the record's id (a random 64-hex id, as
// Docker's), so names never collide across tenants in the engine.
type record struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Tenant     string                `json:"tenant"`
	UID        int                   `json:"uid"`
	Created    time.Time             `json:"created"`
	AutoRemove bool                  `json:"autoRemove"`
	Request    engine.Request        `json:"request"`
	Config     *container.Config     `json:"config"`
	HostConfig *container.HostConfig `json:"hostConfig"`
	// Started is set once the engine has the container (start decided and spawned).
	Started bool `json:"started"`
	// Exit is the exit status the daemon saw (kept after an auto-remove for a waiting client).
	Exit *engine.ExitInfo `json:"exit,omitempty"`
}

// records holds every record in memory, indexed by id and by (tenant, name). One daemon per
// state root (a lock file), so memory is the truth and the files its durable copy.
type records struct {
	dir  string
	lock *os.File

	mu    sync.Mutex // guards byID and names
	byID  map[string]*record
	names map[string]map[string]string // tenant → name → id
}

func openRecords(dir string) (*records, error) {
	if err := os.MkdirAll(filepath.Join(dir, "containers"), 0o700); err != nil {
		return nil, fmt.Errorf("daemon state: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "daemon.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("daemon lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("another bulwarkd serves this state root (%s is locked): %w", lock.Name(), err)
	}
	rs := &records{dir: dir, lock: lock, byID: map[string]*record{}, names: map[string]map[string]string{}}
	ents, err := os.ReadDir(filepath.Join(dir, "containers"))
	if err != nil {
		rs.close()
		return nil, err
	}
	for _, ent := range ents {
		id, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "containers", ent.Name()))
		if err != nil {
			rs.close()
			return nil, err
		}
		rec := &record{}
		if err := json.Unmarshal(b, rec); err != nil || rec.ID != id {
			rs.close()
			return nil, fmt.Errorf("daemon record %s: unreadable (%v)", ent.Name(), err)
		}
		rs.index(rec)
	}
	return rs, nil
}

func (rs *records) close() error { return rs.lock.Close() }

func (rs *records) index(rec *record) {
	rs.byID[rec.ID] = rec
	if rs.names[rec.Tenant] == nil {
		rs.names[rec.Tenant] = map[string]string{}
	}
	rs.names[rec.Tenant][rec.Name] = rec.ID
}

func (rs *records) path(id string) string { return filepath.Join(rs.dir, "containers", id+".json") }

func (rs *records) write(rec *record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(rs.path(rec.ID), b, atomicfile.Options{}); err != nil {
		return fmt.Errorf("write daemon record: %w", err)
	}
	return nil
}

// add claims rec's name in its tenant and stores it; a name in use is a conflict.
func (rs *records) add(rec *record) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if id, used := rs.names[rec.Tenant][rec.Name]; used {
		return errdefs.Errorf(errdefs.ErrAlreadyExists, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", rec.Name, id)
	}
	if err := rs.write(rec); err != nil {
		return err
	}
	rs.index(rec)
	return nil
}

// update writes a changed record (fn runs under the lock).
func (rs *records) update(id string, fn func(*record)) (*record, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rec, ok := rs.byID[id]
	if !ok {
		return nil, errNoSuchContainer(id)
	}
	cp := *rec
	fn(&cp)
	if err := rs.write(&cp); err != nil {
		return nil, err
	}
	rs.byID[id] = &cp
	return &cp, nil
}

// remove drops a record and frees its name.
func (rs *records) remove(id string) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rec, ok := rs.byID[id]
	if !ok {
		return nil
	}
	if err := os.Remove(rs.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove daemon record: %w", err)
	}
	delete(rs.byID, id)
	if rs.names[rec.Tenant][rec.Name] == id {
		delete(rs.names[rec.Tenant], rec.Name)
	}
	return nil
}

func (rs *records) get(id string) (*record, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rec, ok := rs.byID[id]
	return rec, ok
}

// resolve finds the container ref names for who, as Docker does (name, full id, unique id
// prefix), within who's view: names and prefixes resolve in who's tenant only (an operator's
// prefixes: every tenant's); a full id resolves whoever owns it, and the API policy decides.
func (rs *records) resolve(ref string, who config.Principal) (*record, error) {
	ref = strings.TrimPrefix(ref, "/")
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if id, ok := rs.names[who.Tenant][ref]; ok {
		return rs.byID[id], nil
	}
	if rec, ok := rs.byID[ref]; ok {
		return rec, nil
	}
	var found *record
	if len(ref) >= 1 && isHex(ref) {
		for id, rec := range rs.byID {
			if !strings.HasPrefix(id, ref) || (rec.Tenant != who.Tenant && !who.Operator) {
				continue
			}
			if found != nil {
				return nil, statusError(http.StatusBadRequest, "multiple IDs found with provided prefix: %s", ref)
			}
			found = rec
		}
	}
	if found == nil {
		return nil, errNoSuchContainer(ref)
	}
	return found, nil
}

// list returns the records of tenant, newest first.
func (rs *records) list(tenant string) []*record {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	var out []*record
	for _, rec := range rs.byID {
		if rec.Tenant == tenant {
			out = append(out, rec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

// all returns every record (the watchers resume them after a restart).
func (rs *records) all() []*record {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]*record, 0, len(rs.byID))
	for _, rec := range rs.byID {
		out = append(out, rec)
	}
	return out
}

// errNoSuchContainer is Docker's answer for a reference that names no container.
func errNoSuchContainer(ref string) error {
	return errdefs.Errorf(errdefs.ErrNotFound, "No such container: %s", strings.TrimPrefix(ref, "/"))
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
