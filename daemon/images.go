package daemon

import (
	"net/http"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/errdefs"
	bimage "bulwark.dev/bulwark/image"
)

// Images are the state root's store: every tenant may run any of them (trust and the run policy
// decide each run), so every tenant sees the same list. Which tenant may remove which reference:
// imagehold.go.

// imageView is one stored image as Docker shows it: its id is its configuration's digest.
type imageView struct {
	ref      string
	desc     ocispec.Descriptor
	manifest *ocispec.Manifest
	config   *ocispec.Image
}

func (v *imageView) size() int64 {
	var n int64
	for _, l := range v.manifest.Layers {
		n += l.Size
	}
	return n
}

func (v *imageView) created() time.Time {
	if v.config.Created != nil {
		return *v.config.Created
	}
	return time.Time{}
}

func (s *Server) images() ([]*imageView, error) {
	st := s.eng.Store()
	list, err := st.List()
	if err != nil {
		return nil, err
	}
	out := make([]*imageView, 0, len(list))
	for _, im := range list {
		m, err := st.Manifest(im.Descriptor)
		if err != nil {
			return nil, err
		}
		cfg, err := st.Config(m)
		if err != nil {
			return nil, err
		}
		out = append(out, &imageView{ref: im.Ref, desc: im.Descriptor, manifest: m, config: cfg})
	}
	return out, nil
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request, c *call) error {
	if f := r.URL.Query().Get("filters"); f != "" && f != "{}" {
		return notImplemented("image list filters")
	}
	views, err := s.images()
	if err != nil {
		return err
	}
	byID := map[string]*image.Summary{}
	out := []image.Summary{}
	for _, v := range views {
		id := v.manifest.Config.Digest.String()
		if sum, ok := byID[id]; ok {
			sum.RepoTags = append(sum.RepoTags, v.ref)
			continue
		}
		out = append(out, image.Summary{ID: id, RepoTags: []string{v.ref}, RepoDigests: []string{},
			Created: v.created().Unix(), Size: v.size(), Labels: v.config.Config.Labels, Containers: -1, SharedSize: -1})
		byID[id] = &out[len(out)-1]
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// findImage finds the stored image name names (a reference, NAME defaulting to :latest, or an
// image id, whole or without its sha256: prefix, or a manifest digest), and every reference of
// the same image.
func (s *Server) findImage(name string) (*imageView, []string, error) {
	views, err := s.images()
	if err != nil {
		return nil, nil, err
	}
	want := name
	if !strings.Contains(name, ":") && !strings.Contains(name, "@") {
		want = name + ":latest"
	}
	var found *imageView
	var tags []string
	for _, v := range views {
		id := v.manifest.Config.Digest.String()
		if v.ref == want || id == name || strings.TrimPrefix(id, "sha256:") == name || v.desc.Digest.String() == name ||
			normalized(v.ref) == normalized(want) {
			found = v
		}
	}
	if found == nil {
		return nil, nil, errdefs.Errorf(errdefs.ErrNotFound, "No such image: %s", name)
	}
	for _, v := range views {
		if v.manifest.Config.Digest == found.manifest.Config.Digest {
			tags = append(tags, v.ref)
		}
	}
	return found, tags, nil
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, c *call) error {
	name, ok := strings.CutSuffix(r.PathValue("name"), "/json")
	if !ok {
		return notImplemented(r.Method + " /images/" + r.PathValue("name"))
	}
	found, tags, err := s.findImage(name)
	if err != nil {
		return err
	}
	diffIDs := make([]string, 0, len(found.config.RootFS.DiffIDs))
	for _, d := range found.config.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	desc := found.desc
	resp := image.InspectResponse{
		ID: found.manifest.Config.Digest.String(), RepoTags: tags, RepoDigests: []string{},
		Config:       &dockerspec.DockerOCIImageConfig{ImageConfig: found.config.Config},
		Architecture: found.config.Architecture, Variant: found.config.Variant, Os: found.config.OS,
		OsVersion: found.config.OSVersion, Author: found.config.Author, Size: found.size(),
		GraphDriver: &storage.DriverData{Name: "bulwark", Data: map[string]string{}},
		RootFS:      image.RootFS{Type: "layers", Layers: diffIDs},
		Descriptor:  &desc,
	}
	if n := len(found.config.History); n > 0 {
		resp.Comment = found.config.History[n-1].Comment
	}
	if t := found.created(); !t.IsZero() {
		resp.Created = t.Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// normalized is a reference as the store spells it (docker.io/library/ dropped), so that
// "busybox:1" finds what a client may call "docker.io/library/busybox:1".
func normalized(ref string) string {
	if r, err := bimage.ParseRef(ref); err == nil {
		return r.String()
	}
	return ref
}
