package runcgate

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/policy/document"
	"bulwark.dev/bulwark/sandbox"
	"bulwark.dev/bulwark/volume"
)

// Docker named volumes: dockerd binds <data-root>/volumes/NAME/_data into the container. When
// the operator names that data root (Config.DockerRoot), each bind whose resolved source is
// exactly such a directory is shown to policy as a Docker volume with what it holds, read from
// the descriptor the bind mounts from; once policy allowed the request, each writable one is
// moved into the storage range (volume.AdoptDocker) before the container is created, so the
// floor's idmapped bind makes container root its owner.

// dockerVolume is one bind of a Docker named volume.
type dockerVolume struct {
	document.DockerVolume
	fd       int // the bind's descriptor (owned by the BindSources); -1 for an exec
	writable bool
}

// findDockerVolumes returns the binds of spec that are Docker named volumes of the data root
// root, with their state. root empty: none. For a create, binds holds the descriptors the
// spec's (resolved) sources mount from, and each state is read from its descriptor; for an exec
// (binds nil) nothing is mounted: each source is resolved as policy resolves it (relative to
// bundle) and a volume that is gone since the create is left out, as policy leaves it.
func findDockerVolumes(root, bundle string, spec *specs.Spec, binds *sandbox.BindSources) ([]dockerVolume, error) {
	if root == "" {
		return nil, nil
	}
	real, err := document.ResolveHostPath(root)
	if err != nil {
		return nil, fmt.Errorf("docker data root %s: %w", root, err)
	}
	var out []dockerVolume
	for _, m := range spec.Mounts {
		if !document.IsBind(m.Type, m.Options) {
			continue
		}
		src, fd := m.Source, -1
		if binds == nil {
			if !filepath.IsAbs(src) {
				src = filepath.Join(bundle, src)
			}
			if src, err = document.ResolveHostPath(src); err != nil {
				continue
			}
		}
		name, ok := volume.DockerVolumeName(real, src)
		if !ok {
			continue
		}
		var st volume.DockerState
		if binds != nil {
			if fd, err = binds.Descriptor(src); err != nil {
				return nil, err
			}
			st, err = volume.InspectDocker(fd)
		} else {
			st, err = inspectPath(src)
		}
		if err != nil {
			return nil, fmt.Errorf("docker volume %s: %w", name, err)
		}
		out = append(out, dockerVolume{
			DockerVolume: document.DockerVolume{Source: src, Name: name, State: string(st)},
			fd:           fd, writable: !slices.Contains(m.Options, "ro"), // as policy reads it
		})
	}
	return out, nil
}

// inspectPath is volume.InspectDocker of the directory at the real path src.
func inspectPath(src string) (volume.DockerState, error) {
	fd, err := unix.Open(src, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	return volume.InspectDocker(fd)
}

// adoptDockerVolumes moves the allowed writable Docker volumes into the storage range, each once
// and audited (volume.adopt). A volume decided on as filled was granted its tree by policy;
// one decided on as empty that is filled by now is refused.
func adoptDockerVolumes(vols []dockerVolume, t *gate.Trail) error {
	for _, v := range vols {
		if !v.writable {
			continue
		}
		a, err := volume.AdoptDocker(v.fd, v.State == string(volume.DockerFilled))
		if err != nil {
			return fmt.Errorf("adopt docker volume %s (%s): %w", v.Name, v.Source, err)
		}
		if a.Changed > 0 {
			t.Add(audit.TypeEngine, "volume.adopt", map[string]string{
				"volume": v.Name, "path": v.Source, "from": string(a.From), "entries": strconv.Itoa(a.Changed),
				"owner": strconv.FormatUint(uint64(sandbox.StorageIDBase), 10),
			})
		}
	}
	return nil
}

// policyVolumes is what the request document shows of vols.
func policyVolumes(vols []dockerVolume) []document.DockerVolume {
	out := make([]document.DockerVolume, len(vols))
	for i, v := range vols {
		out[i] = v.DockerVolume
	}
	return out
}
