package engine

import (
	"context"
	"errors"
	"fmt"
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

// parseVolume turns one -v SRC:DST[:MODES] into a mount: SRC an absolute host path (a bind,
// read-only unless MODES has rw) or a volume name (writable unless MODES has ro). MODES is a
// comma-separated list of ro or rw and, for a volume, nocopy (no fill from the image) and exec
// (policy must grant it); anything else is refused, never ignored.
func parseVolume(v string) (specs.Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return specs.Mount{}, fmt.Errorf("volume %q: want SRC:DST[:ro|rw]", v)
	}
	src, dst := parts[0], parts[1]
	if !path.IsAbs(dst) {
		return specs.Mount{}, fmt.Errorf("volume %q: the destination must be an absolute path", v)
	}
	named := !path.IsAbs(src)
	if named && !volume.ValidName(src) {
		return specs.Mount{}, fmt.Errorf("volume %q: the source must be an absolute host path or a volume name ([A-Za-z0-9][A-Za-z0-9_.-]*)", v)
	}
	// A named volume is writable unless :ro, as in docker; a host path is read-only unless :rw.
	mode := map[bool]string{true: "rw", false: "ro"}[named]
	var extra []string
	if len(parts) == 3 {
		seen := map[string]bool{}
		for _, o := range strings.Split(parts[2], ",") {
			switch {
			case seen[o]:
				return specs.Mount{}, fmt.Errorf("volume %q: mode %q given twice", v, o)
			case o == "ro" || o == "rw":
				if seen["ro"] || seen["rw"] {
					return specs.Mount{}, fmt.Errorf("volume %q: ro and rw together", v)
				}
				mode = o
			case named && (o == optNoCopy || o == optExec):
				extra = append(extra, o)
			case named:
				return specs.Mount{}, fmt.Errorf("volume %q: mode %q: want ro or rw, nocopy, exec", v, o)
			default:
				return specs.Mount{}, fmt.Errorf("volume %q: mode %q: want ro or rw", v, o)
			}
			seen[o] = true
		}
	}
	if named {
		return specs.Mount{Destination: dst, Type: volumeType, Source: src, Options: append([]string{mode}, extra...)}, nil
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", mode}}, nil
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

// removeAnonymousVolumes removes the anonymous volumes the removed container m mounted (docker's
// run --rm and rm -v do), unless another container of the tenant mounts one too.
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
// a volume that does not exist yet (as docker run does). A volume never filled, and empty, is
// filled from the image at its destination unless the mount says nocopy (fillVolume). A volume
// is mounted noexec unless the mount asks for exec (policy decides: exec_volumes), idmapped to
// the storage range (the floor keeps both), and not recursively (it has no submounts).
//
// A dry run makes and fills nothing: a volume that does not exist yet is decided on (its size by
// policy) but not made, and its mountpoint, the path it would have, is returned in planned (for
// sandbox.ResolveBindsPlanned); the first real run makes and fills it.
func (e *Engine) resolveVolumes(ctx context.Context, s *specs.Spec, root *imageRoot, tenant string, dryRun bool, t *trail) (planned []string, err error) {
	for i, m := range s.Mounts {
		if m.Type != volumeType {
			continue
		}
		name, anonymous := m.Source, m.Source == ""
		if anonymous {
			name = NewID() + NewID() + NewID() + NewID() // 48 hex digits, as docker's are random
		}
		v, created, err := e.createVolume(ctx, tenant, name, anonymous, dryRun, 0, t)
		if err != nil {
			return nil, err
		}
		if created && dryRun {
			planned = append(planned, v.Mountpoint)
		}
		opts := []string{"bind", "nosuid", "nodev", "noexec", "idmap"}
		fill := !dryRun
		for _, o := range m.Options {
			switch o {
			case optNoCopy:
				fill = false
			case optExec:
				opts[3] = "exec"
			default:
				opts = append(opts, o)
			}
		}
		if fill {
			err := e.volumes.Fill(v, func(data string) (bool, error) { return fillVolume(root, m.Destination, data) })
			if err != nil {
				err = fmt.Errorf("volume %s: fill from the image at %s: %w", v.Name, m.Destination, err)
				if created { // not kept half-made
					err = errors.Join(err, e.volumes.Remove(tenant, v.Name, func(*volume.Volume) (bool, error) { return false, nil }))
				}
				return nil, err
			}
		}
		s.Mounts[i] = specs.Mount{Destination: m.Destination, Type: "bind", Source: v.Mountpoint, Options: opts}
	}
	return planned, nil
}

// CreateVolume makes the caller's tenant's volume name (or returns the existing one) with the
// local driver's options (size, decided by policy: volumequota.go).
func (e *Engine) CreateVolume(ctx context.Context, name string, opts map[string]string, who Caller) (*volume.Volume, error) {
	size, err := parseVolumeOpts(opts)
	if err != nil {
		return nil, err
	}
	t := newTrail(e.audit, who.Identity, who.tenant(), NewID())
	v, _, err := e.createVolume(ctx, who.tenant(), name, false, false, size, t)
	return v, errors.Join(err, t.Flush())
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
		names, err := e.recordNames()
		if err != nil {
			return false, err
		}
		for _, name := range names {
			m, err := e.readMeta(name)
			if err != nil || m.owner() != who.tenant() {
				continue
			}
			s, err := e.readEffectiveSpec(name)
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
