package engine

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/volume"
)

// volumeType marks a -v NAME:/DST mount between parsing and resolution (resolveVolumes), which
// turns it into a bind of the tenant's volume.
const volumeType = "volume"

// parseVolume turns one -v SRC:DST[:MODE] into a mount: SRC an absolute host path (a bind,
// read-only unless MODE is rw) or a volume name (writable unless MODE is ro). Any other MODE is
// refused, never ignored.
func parseVolume(v string) (specs.Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return specs.Mount{}, fmt.Errorf("volume %q: want SRC:DST[:ro|rw]", v)
	}
	src, dst := parts[0], parts[1]
	if !path.IsAbs(dst) {
		return specs.Mount{}, fmt.Errorf("volume %q: the destination must be an absolute path", v)
	}
	if !path.IsAbs(src) {
		if !volume.ValidName(src) {
			return specs.Mount{}, fmt.Errorf("volume %q: the source must be an absolute host path or a volume name ([A-Za-z0-9][A-Za-z0-9_.-]*)", v)
		}
		// A named volume is writable unless :ro, as in docker.
		opts := []string{"rw"}
		if len(parts) == 3 {
			switch parts[2] {
			case "ro", "rw":
				opts = []string{parts[2]}
			default:
				return specs.Mount{}, fmt.Errorf("volume %q: mode %q: want ro or rw", v, parts[2])
			}
		}
		return specs.Mount{Destination: dst, Type: volumeType, Source: src, Options: opts}, nil
	}
	opts := []string{"rbind", "ro"}
	if len(parts) == 3 {
		switch parts[2] {
		case "ro":
		case "rw":
			opts = []string{"rbind", "rw"}
		default:
			return specs.Mount{}, fmt.Errorf("volume %q: mode %q: want ro or rw", v, parts[2])
		}
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}, nil
}

// addImageVolumes adds an anonymous volume (a volumeType mount without a name) for each of the
// image config's VOLUME paths no mount of the request covers, as docker run does.
func addImageVolumes(s *specs.Spec, vols map[string]struct{}) {
	have := map[string]bool{}
	for _, m := range s.Mounts {
		have[path.Clean(m.Destination)] = true
	}
	var paths []string
	for p := range vols {
		if c := path.Clean("/" + p); !have[c] {
			have[c] = true
			paths = append(paths, c)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: p, Type: volumeType, Options: []string{"rw"}})
	}
}

// removeAnonymousVolumes removes the anonymous volumes the removed container m mounted (docker
// run --rm does), unless another container of the tenant mounts one too.
func (e *Engine) removeAnonymousVolumes(m *Meta, spec *specs.Spec) error {
	who := Caller{Tenant: m.Tenant}
	var errs []error
	for _, mt := range spec.Mounts {
		rel, err := filepath.Rel(filepath.Join(e.volumes.Dir(), who.tenant()), mt.Source)
		if err != nil || filepath.Base(rel) != "_data" || filepath.Dir(filepath.Dir(rel)) != "." {
			continue
		}
		v, err := e.volumes.Get(who.tenant(), filepath.Dir(rel))
		if err != nil || !v.Anonymous {
			continue
		}
		if err := e.volumes.Remove(who.tenant(), v.Name, e.volumeInUse(who)); err != nil && !errors.Is(err, volume.ErrInUse) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolveVolumes turns the spec's named-volume mounts into binds of the tenant's volumes, making
// a volume that does not exist yet (as docker run does), filled from the image (fillVolume). A volume is mounted noexec, idmapped to
// the storage range (the floor keeps both), and not recursively (it has no submounts).
func (e *Engine) resolveVolumes(s *specs.Spec, root *imageRoot, tenant string, t *trail) error {
	for i, m := range s.Mounts {
		if m.Type != volumeType {
			continue
		}
		name, anonymous := m.Source, m.Source == ""
		if anonymous {
			name = NewID() + NewID() + NewID() + NewID() // 48 hex digits, as docker's are random
		}
		v, created, err := e.volumes.Create(tenant, name, anonymous)
		if err != nil {
			return err
		}
		if created {
			// A new volume starts with what the image has there (docker's copy-up); one that
			// could not be filled is not kept half-filled.
			if err := fillVolume(root, m.Destination, v.Mountpoint); err != nil {
				return errors.Join(fmt.Errorf("volume %s: fill from the image at %s: %w", v.Name, m.Destination, err),
					e.volumes.Remove(tenant, v.Name, func(*volume.Volume) (bool, error) { return false, nil }))
			}
			t.Add(audit.TypeEngine, "volume.create", map[string]string{"volume": v.Name, "tenant": tenant})
		}
		s.Mounts[i] = specs.Mount{Destination: m.Destination, Type: "bind", Source: v.Mountpoint,
			Options: append([]string{"bind", "nosuid", "nodev", "noexec", "idmap"}, m.Options...)}
	}
	return nil
}

// CreateVolume makes the caller's tenant's volume name (or returns the existing one).
func (e *Engine) CreateVolume(name string, who Caller) (*volume.Volume, error) {
	v, created, err := e.volumes.Create(who.tenant(), name, false)
	if err == nil && created {
		err = e.volumeEvent(who, "volume.create", v.Name)
	}
	return v, err
}

// InspectVolume returns the caller's tenant's volume name.
func (e *Engine) InspectVolume(name string, who Caller) (*volume.Volume, error) {
	return e.volumes.Get(who.tenant(), name)
}

// ListVolumes returns the caller's tenant's volumes.
func (e *Engine) ListVolumes(who Caller) ([]*volume.Volume, error) {
	return e.volumes.List(who.tenant())
}

// RemoveVolume removes the caller's tenant's volume name, refused while a container of the
// tenant mounts it (errdefs conflict).
func (e *Engine) RemoveVolume(name string, who Caller) error {
	if err := e.volumes.Remove(who.tenant(), name, e.volumeInUse(who)); err != nil {
		return err
	}
	return e.volumeEvent(who, "volume.remove", name)
}

// PruneVolumes removes the caller's tenant's volumes no container mounts.
func (e *Engine) PruneVolumes(who Caller) ([]string, error) {
	names, err := e.volumes.Prune(who.tenant(), e.volumeInUse(who))
	for _, n := range names {
		err = errors.Join(err, e.volumeEvent(who, "volume.remove", n))
	}
	return names, err
}

func (e *Engine) volumeEvent(who Caller, action, name string) error {
	t := newTrail(e.audit, who.Identity, who.tenant(), NewID())
	t.Add(audit.TypeEngine, action, map[string]string{"volume": name, "tenant": who.tenant()})
	return t.Flush()
}

// volumeInUse reports whether any container of who's tenant (running or not: it may start
// again) mounts the volume, from each container's recorded effective spec.
func (e *Engine) volumeInUse(who Caller) func(*volume.Volume) (bool, error) {
	return func(v *volume.Volume) (bool, error) {
		ents, err := os.ReadDir(filepath.Join(e.cfg.Root, "engine"))
		if err != nil {
			return false, fmt.Errorf("list containers: %w", err)
		}
		for _, ent := range ents {
			m, err := e.readMeta(ent.Name())
			if err != nil || m.owner() != who.tenant() {
				continue
			}
			s, err := e.readEffectiveSpec(ent.Name())
			if err != nil {
				continue // not created yet, or being removed
			}
			for _, mt := range s.Mounts {
				if mt.Source == v.Mountpoint {
					return true, nil
				}
			}
		}
		return false, nil
	}
}
