package daemon

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	mvolume "github.com/moby/moby/api/types/volume"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	"bulwark.dev/bulwark/policy/api"
	"bulwark.dev/bulwark/volume"
)

// Volumes are the engine's per-tenant named volumes (the local driver, sized when the run
// policy says so): a tenant sees, names and removes only its own; another tenant's volume of
// the same name is "no such volume".

// volumeTarget resolves the route's {id} as the caller's volume, for the API policy.
func (s *Server) volumeTarget(r *http.Request, c *call) (*api.Target, error) {
	v, err := s.eng.InspectVolume(r.PathValue("id"), tenantCaller(c))
	if err != nil {
		return nil, err
	}
	c.object = v.Name
	return &api.Target{Kind: "volume", ID: v.Name, Owner: v.Tenant}, nil
}

func volumeView(v *volume.Volume) mvolume.Volume {
	out := mvolume.Volume{Name: v.Name, Driver: "local", Mountpoint: v.Mountpoint, Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: map[string]string{}, Options: map[string]string{}}
	if v.Size > 0 {
		out.Options["size"] = strconv.FormatInt(v.Size, 10)
	}
	if v.Anonymous {
		out.Labels["com.docker.volume.anonymous"] = ""
	}
	return out
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request, c *call) error {
	raw, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var req mvolume.CreateRequest
	if err := strictDecode(raw, &req); err != nil {
		return err
	}
	switch {
	case req.Driver != "" && req.Driver != "local":
		return statusError(http.StatusBadRequest, "volume create: Driver %q: bulwarkd's volumes are local", req.Driver)
	case len(req.Labels) > 0:
		return statusError(http.StatusBadRequest, "volume create: Labels: volume labels are not supported")
	case req.ClusterVolumeSpec != nil:
		return statusError(http.StatusBadRequest, "volume create: ClusterVolumeSpec: cluster volumes are not supported")
	}
	if req.Name == "" {
		req.Name = newContainerID() // Docker names an unnamed volume with a random 64-hex id
	}
	// The engine refuses an option it does not know (size is the one it has) and decides the
	// size with the run policy.
	v, err := s.eng.CreateVolume(r.Context(), req.Name, req.DriverOpts, tenantCaller(c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, volumeView(v))
	return nil
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request, c *call) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	if len(f) > 0 {
		return notImplemented("volume list filters")
	}
	list, err := s.eng.ListVolumes(tenantCaller(c))
	if err != nil {
		return err
	}
	out := mvolume.ListResponse{Volumes: []mvolume.Volume{}, Warnings: []string{}}
	for _, v := range list {
		out.Volumes = append(out.Volumes, volumeView(v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request, c *call) error {
	v, err := s.eng.InspectVolume(c.object, tenantCaller(c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, volumeView(v))
	return nil
}

// volumeRemove removes the caller's volume; force changes nothing here (Docker's force lets a
// volume go whose driver fails, and the local driver does not), and a volume in use is a 409.
func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.eng.RemoveVolume(c.object, tenantCaller(c)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// volumePrune removes the caller's unused volumes: only anonymous ones unless the all filter
// says otherwise, as Docker's API 1.42 and later (and every one before 1.42, as those did).
func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request, c *call) error {
	f, err := parseFilters(r)
	if err != nil {
		return err
	}
	all := compareVersions(c.version, "1.42") < 0
	for k, vals := range f {
		if k != "all" || len(vals) != 1 {
			return notImplemented("volume prune filter " + k)
		}
		if all, err = strconv.ParseBool(vals[0]); err != nil {
			return statusError(http.StatusBadRequest, "filter all=%q: want true or false", vals[0])
		}
	}
	who := tenantCaller(c)
	var removed []string
	if all {
		if removed, err = s.eng.PruneVolumes(who); err != nil {
			return err
		}
	} else {
		list, err := s.eng.ListVolumes(who)
		if err != nil {
			return err
		}
		for _, v := range list {
			if !v.Anonymous {
				continue
			}
			switch err := s.eng.RemoveVolume(v.Name, who); {
			case err == nil:
				removed = append(removed, v.Name)
			case errors.Is(err, volume.ErrInUse), errdefs.Class(err) == errdefs.ErrNotFound:
			default:
				return err
			}
		}
	}
	if removed == nil {
		removed = []string{}
	}
	writeJSON(w, http.StatusOK, mvolume.PruneReport{VolumesDeleted: removed})
	return nil
}

// parseFilters reads Docker's filters parameter, {"key": ["v"]} or {"key": {"v": true}}.
func parseFilters(r *http.Request) (map[string][]string, error) {
	raw := r.URL.Query().Get("filters")
	if raw == "" {
		return nil, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return nil, statusError(http.StatusBadRequest, "filters: %v", err)
	}
	out := map[string][]string{}
	for k, v := range doc {
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			var set map[string]bool
			if err := json.Unmarshal(v, &set); err != nil {
				return nil, statusError(http.StatusBadRequest, "filters: %s: want a list or a set of values", k)
			}
			for s, on := range set {
				if on {
					list = append(list, s)
				}
			}
		}
		sort.Strings(list)
		out[k] = list
	}
	return out, nil
}

// mapStorage maps the create request's binds, mounts and anonymous volumes onto the engine
// request (-v and --mount as bulwark run takes them: the engine checks their syntax and the run
// policy decides their sources, writability and sizes); Docker fields with no equivalent are
// refused with their name.
func mapStorage(cfg *container.Config, hc *container.HostConfig, er *engine.Request) error {
	refuse := func(field, why string) error {
		return statusError(http.StatusBadRequest, "%s: %s", field, why)
	}
	covered := map[string]bool{}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		switch len(parts) {
		case 2:
			// Docker's default is read-write; policy decides whether the source may be
			// written, and refuses it where not, never making it read-only in silence.
			b += ":rw"
		case 3:
			if modes := strings.Split(parts[2], ","); !slices.Contains(modes, "ro") && !slices.Contains(modes, "rw") {
				b += ",rw"
			}
		default:
			return refuse("HostConfig.Binds", fmt.Sprintf("%q: want SRC:DST[:MODES]", b))
		}
		er.Volumes = append(er.Volumes, b)
		covered[path.Clean(parts[1])] = true
	}
	for i, m := range hc.Mounts {
		v, err := mountFlag(m)
		if err != nil {
			return refuse(fmt.Sprintf("HostConfig.Mounts[%d]", i), err.Error())
		}
		er.Mounts = append(er.Mounts, v)
		covered[path.Clean(m.Target)] = true
	}
	for dst := range hc.Tmpfs {
		covered[path.Clean(dst)] = true
	}
	if cfg == nil {
		return nil
	}
	// Config.Volumes are anonymous volumes (docker run -v /DST); the SDKs also list there the
	// destinations of their binds, which the binds cover.
	var anon []string
	for dst := range cfg.Volumes {
		if !covered[path.Clean(dst)] {
			anon = append(anon, dst)
		}
	}
	sort.Strings(anon)
	for _, dst := range anon {
		v, err := mountFlag(mount.Mount{Type: mount.TypeVolume, Target: dst})
		if err != nil {
			return refuse("Config.Volumes", err.Error())
		}
		er.Mounts = append(er.Mounts, v)
	}
	return nil
}

// mountFlag writes m as a --mount value (CSV, as docker's CLI reads it).
func mountFlag(m mount.Mount) (string, error) {
	if m.Target == "" {
		return "", fmt.Errorf("Target is required")
	}
	fields := []string{"type=" + string(m.Type)}
	if m.Source != "" {
		fields = append(fields, "source="+m.Source)
	}
	fields = append(fields, "destination="+m.Target)
	if m.ReadOnly {
		fields = append(fields, "readonly")
	}
	if m.Consistency != "" && m.Consistency != mount.ConsistencyDefault {
		return "", fmt.Errorf("Consistency %q is not supported", m.Consistency)
	}
	if m.ImageOptions != nil || m.ClusterOptions != nil {
		return "", fmt.Errorf("image and cluster mounts are not supported")
	}
	if b := m.BindOptions; b != nil {
		if m.Type != mount.TypeBind {
			return "", fmt.Errorf("BindOptions on a %s mount", m.Type)
		}
		switch {
		case b.Propagation != "":
			return "", fmt.Errorf("BindOptions.Propagation %q: a sandbox's mounts do not propagate", b.Propagation)
		case b.CreateMountpoint:
			return "", fmt.Errorf("BindOptions.CreateMountpoint: a bind's source must exist")
		case b.ReadOnlyNonRecursive, b.ReadOnlyForceRecursive:
			return "", fmt.Errorf("BindOptions.ReadOnlyNonRecursive and ReadOnlyForceRecursive are not supported")
		case b.NonRecursive:
			fields = append(fields, "bind-nonrecursive")
		}
	}
	if v := m.VolumeOptions; v != nil {
		if m.Type != mount.TypeVolume {
			return "", fmt.Errorf("VolumeOptions on a %s mount", m.Type)
		}
		switch {
		case len(v.Labels) > 0:
			return "", fmt.Errorf("VolumeOptions.Labels: volume labels are not supported")
		case v.Subpath != "":
			return "", fmt.Errorf("VolumeOptions.Subpath is not supported")
		case v.DriverConfig != nil && (v.DriverConfig.Name != "" && v.DriverConfig.Name != "local" || len(v.DriverConfig.Options) > 0):
			return "", fmt.Errorf("VolumeOptions.DriverConfig: the local driver without options (create a sized volume first: docker volume create --opt size=…)")
		case v.NoCopy:
			fields = append(fields, "volume-nocopy")
		}
	}
	if t := m.TmpfsOptions; t != nil {
		if m.Type != mount.TypeTmpfs {
			return "", fmt.Errorf("TmpfsOptions on a %s mount", m.Type)
		}
		if len(t.Options) > 0 {
			return "", fmt.Errorf("TmpfsOptions.Options are not supported (size and mode are)")
		}
		if t.SizeBytes != 0 {
			fields = append(fields, "tmpfs-size="+strconv.FormatInt(t.SizeBytes, 10))
		}
		if t.Mode != 0 {
			fields = append(fields, "tmpfs-mode="+strconv.FormatUint(uint64(t.Mode), 8))
		}
	}
	var sb strings.Builder
	cw := csv.NewWriter(&sb)
	if err := cw.Write(fields); err != nil {
		return "", err
	}
	cw.Flush()
	return strings.TrimSuffix(sb.String(), "\n"), nil
}

// mountPoints is what inspect shows of rec's mounts once created: its volumes (named and
// anonymous), its binds and its tmpfs mounts, as the engine made them.
func (s *Server) mountPoints(rec *record, c engine.Caller) []container.MountPoint {
	out := []container.MountPoint{}
	if !rec.Started {
		return out
	}
	mounts, err := s.eng.Mounts(rec.ID, c)
	if err != nil {
		return out
	}
	vols, _ := s.eng.ListVolumes(c)
	byPath := map[string]*volume.Volume{}
	for _, v := range vols {
		byPath[v.Mountpoint] = v
	}
	asked := map[string]bool{}
	for _, v := range rec.Request.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 {
			asked[path.Clean(parts[1])] = true
		}
	}
	if hc := rec.HostConfig; hc != nil {
		for _, m := range hc.Mounts {
			asked[path.Clean(m.Target)] = true
		}
		for dst := range hc.Tmpfs {
			asked[path.Clean(dst)] = true
		}
	}
	for _, m := range mounts {
		rw := !slices.Contains(m.Options, "ro")
		switch v := byPath[m.Source]; {
		case v != nil:
			out = append(out, container.MountPoint{Type: mount.TypeVolume, Name: v.Name, Source: m.Source,
				Destination: m.Destination, Driver: "local", RW: rw})
		case !asked[m.Destination]:
		case m.Type == "tmpfs":
			out = append(out, container.MountPoint{Type: mount.TypeTmpfs, Destination: m.Destination, RW: rw})
		default:
			out = append(out, container.MountPoint{Type: mount.TypeBind, Source: m.Source, Destination: m.Destination, RW: rw})
		}
	}
	return out
}
