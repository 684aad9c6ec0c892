package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/internal/names"
)

// A container's record is a directory of its own (meta.json, plan.json, a detached one's logs),
// named after the container, in one of two places:
//
//   - <root>/engine/<id>: the state root (disk), for every container whose record may outlive
//     the process that runs it — detached ones, kept ones (no --rm), writable roots (their upper
//     filesystem image lives beside the record);
//   - <run root>/engine/<id>: the run root (tmpfs), for a foreground --rm run with a read-only
//     root. Its record goes when its client ends the run, or when the state root's supervisor
//     collects the container of a client that died (the watch); a reboot ends the container
//     with the record, as it ends the sandbox's own state beside it. On the state root's disk
//     each file made, replaced and removed there was a journalled update on the run's path
//     (≈ 1 ms each on this ext4).
//
// Every reader lists both (recordNames) and finds a record where it is (metaDir), so ps,
// inspect, exec, stop, kill, rm, quotas, layer and volume use see a container wherever its
// record is. A name is one container's in both places (createMeta).

// stateRecordDir is where a record in the state root is; runRecordDir where one in the run root is.
func (e *Engine) stateRecordDir(id string) string { return filepath.Join(e.cfg.Root, "engine", id) }
func (e *Engine) runRecordDir(id string) string   { return filepath.Join(e.cfg.RunRoot, "engine", id) }

// metaDir is the directory of container id's record: the run root's if it has one, else the
// state root's.
func (e *Engine) metaDir(id string) string {
	if d := e.runRecordDir(id); exists(d) {
		return d
	}
	return e.stateRecordDir(id)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// recordNames lists the names of the record directories of both places, the state root's first
// (a name is in at most one, but for a moment while two runs claim it). A place without an
// engine/ directory holds none.
func (e *Engine) recordNames() ([]string, error) {
	var names []string
	for _, dir := range []string{filepath.Join(e.cfg.Root, "engine"), filepath.Join(e.cfg.RunRoot, "engine")} {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("list containers: %w", err)
		}
		for _, ent := range ents {
			if !slices.Contains(names, ent.Name()) {
				names = append(names, ent.Name())
			}
		}
	}
	return names, nil
}

// createMeta claims the id and writes its record: the directory is created exclusively, so two
// runs with one --name cannot both proceed. inRunRoot puts it in the run root (see above). Each
// run makes its directory before it looks for the name in the other place, so of two runs
// claiming one name in the two places at once, at least one sees the other's and gives up.
func (e *Engine) createMeta(m *Meta, inRunRoot bool) (string, error) {
	// Shared while the name is claimed (directory made, record written): a run killed in
	// between leaves a directory without a record, which List removes once no claim is on.
	unlock, _, err := lockFile(e.claimLockPath(), unix.LOCK_SH)
	if err != nil {
		return "", err
	}
	defer unlock()
	dir, other := e.stateRecordDir(m.ID), e.runRecordDir(m.ID)
	if inRunRoot {
		dir, other = other, dir
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return "", fmt.Errorf("create container state: %w", err)
		}
	}
	inUse := errdefs.Errorf(errdefs.ErrAlreadyExists, "container name %q is already in use", m.ID)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", inUse
		}
		return "", fmt.Errorf("create container state: %w", err)
	}
	if _, err := os.Lstat(other); !errors.Is(err, os.ErrNotExist) {
		os.Remove(dir)
		if err == nil {
			return "", inUse
		}
		return "", fmt.Errorf("create container state: %w", err)
	}
	// The sandbox resolves the bundle directory as the container's mapped root.
	if err := os.Chmod(dir, 0o711); err != nil {
		return "", err
	}
	return dir, e.writeMeta(m)
}

// claimLockPath is beside the state root's engine/, whose entries are all containers.
func (e *Engine) claimLockPath() string { return filepath.Join(e.cfg.Root, "engine.claims.lock") }

// removeDeadClaims removes the directories (in both places) of names whose run was killed
// between claiming the name and writing its record (nothing else was made yet: the record comes
// first), with the record's temporary file if the kill came in the middle of writing it. It
// runs only when no claim is in progress; a busy lock leaves them for the next List.
func (e *Engine) removeDeadClaims() {
	unlock, ok, err := lockFile(e.claimLockPath(), unix.LOCK_EX|unix.LOCK_NB)
	if err != nil || !ok {
		return
	}
	defer unlock()
	for _, base := range []string{filepath.Join(e.cfg.Root, "engine"), filepath.Join(e.cfg.RunRoot, "engine")} {
		ents, _ := os.ReadDir(base)
		for _, ent := range ents {
			if !ent.IsDir() || !names.Object(ent.Name()) {
				continue
			}
			dir := filepath.Join(base, ent.Name())
			if _, err := os.Lstat(filepath.Join(dir, "meta.json")); errors.Is(err, os.ErrNotExist) {
				// A run killed while writing the record leaves the record's temporary file.
				temps, _ := filepath.Glob(filepath.Join(dir, ".meta-*.json"))
				for _, t := range temps {
					os.Remove(t)
				}
				os.Remove(dir) // empty now, or it holds something else and stays
			}
		}
	}
}
