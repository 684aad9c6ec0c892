package runcgate

import (
	"fmt"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/engine/internal/gate"
	"bulwark.dev/bulwark/policy"
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
	policy.DockerVolume
	fd       int // the bind's descriptor (owned by the BindSources)
	writable bool
}

// findDockerVolumes returns the binds of spec (sources already resolved into binds) that are
// Docker named volumes of the data root root (resolved), with their state. root empty: none.
func findDockerVolumes(root string, spec *specs.Spec, binds *sandbox.BindSources) ([]dockerVolume, error) {
	if root == "" {
		return nil, nil
	}
	real, err := policy.ResolveHostPath(root)
	if err != nil {
		return nil, fmt.Errorf("docker data root %s: %w", root, err)
	}
	var out []dockerVolume
	for _, m := range spec.Mounts {
		name, ok := volume.DockerVolumeName(real, m.Source)
		if !ok || !policy.IsBind(m.Type, m.Options) {
			continue
		}
		fd, err := binds.Descriptor(m.Source)
		if err != nil {
			return nil, err
		}
		st, err := volume.InspectDocker(fd)
		if err != nil {
			return nil, fmt.Errorf("docker volume %s: %w", name, err)
		}
		out = append(out, dockerVolume{
			DockerVolume: policy.DockerVolume{Source: m.Source, Name: name, State: string(st)},
			fd:           fd, writable: !slices.Contains(m.Options, "ro"), // as policy reads it
		})
	}
	return out, nil
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
func policyVolumes(vols []dockerVolume) []policy.DockerVolume {
	out := make([]policy.DockerVolume, len(vols))
	for i, v := range vols {
		out[i] = v.DockerVolume
	}
	return out
}
