package daemon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	bimage "bulwark.dev/bulwark/image"
	bregistry "bulwark.dev/bulwark/image/registry"
)

// docker pull and docker rmi. A pull is resolved through TUF exactly as `bulwark image pull
// --verify` and a run resolve it: the tag must be a signed target, and the registry is asked for
// the signed manifest digest, never the tag, so it cannot serve anything else. A refusal is
// reported in Docker's progress stream (errorDetail), which docker pull prints before exiting
// non-zero. The pulling tenant is charged for the image against its max_images_size
// (engine.ChargeImage) and then holds the reference (imagehold.go).

// progress is one line of Docker's JSON progress stream; error is the field older clients and
// the SDKs read.
type progress struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

func (s *Server) imagePull(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.drainBody(w, r); err != nil {
		return err
	}
	q := r.URL.Query()
	if q.Get("fromSrc") != "" {
		return notImplemented("docker import (use bulwark image import on the daemon's host)")
	}
	from, tag := q.Get("fromImage"), q.Get("tag")
	switch {
	case from == "":
		return statusError(http.StatusBadRequest, "pull: fromImage is required")
	case strings.Contains(from, "@") || strings.Contains(tag, ":"):
		return statusError(http.StatusBadRequest, "pull %s: bulwarkd pulls signed tags (TUF signs tags); pull the tag", from+tag)
	case q.Get("platform") != "" && q.Get("platform") != "linux" && !strings.HasPrefix(q.Get("platform"), "linux/"):
		return statusError(http.StatusBadRequest, "platform %q: bulwarkd runs linux containers", q.Get("platform"))
	}
	if err := noCredentials(r.Header.Get(registry.AuthHeader)); err != nil {
		return err
	}
	if tag == "" {
		tag = "latest"
	}
	ref := from + ":" + tag
	parsed, err := bimage.ParseRef(ref)
	if err != nil {
		return statusError(http.StatusBadRequest, "pull %s: %v", ref, err)
	}
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	send := func(p progress) {
		enc.Encode(p)
		rc.Flush()
	}
	fail := func(err error) error {
		s.log.Info("pull refused", "tenant", c.who.Tenant, "ref", ref, "error", err)
		msg := err.Error()
		send(progress{Message: jsonstream.Message{Error: &jsonstream.Error{Message: msg}}, ErrorMessage: msg})
		return nil
	}
	send(progress{Message: jsonstream.Message{Status: "Pulling from " + parsed.Name, ID: tag}})
	who := engine.Identity{UID: c.who.UID, GID: c.who.GID, Principal: "bulwarkd"}
	target, err := s.eng.ResolveSigned(ref, who, false)
	if err != nil {
		return fail(err)
	}
	send(progress{Message: jsonstream.Message{Status: "Signed target " + target.Name + ": " + target.Digest.String()}})
	_, errBefore := s.eng.Store().Resolve(parsed.String())
	desc, err := bregistry.Pull(s.eng.Store(), parsed.Name+"@"+target.Digest.String(), ref, bregistry.Options{Context: r.Context()})
	if err != nil {
		return fail(err)
	}
	if err := s.chargePull(r.Context(), c, parsed.String(), desc, errBefore == nil); err != nil {
		return fail(err)
	}
	if err := s.holds.add(parsed.String(), c.who.Tenant); err != nil {
		return fail(err)
	}
	send(progress{Message: jsonstream.Message{Status: "Digest: " + desc.Digest.String()}})
	send(progress{Message: jsonstream.Message{Status: "Status: Downloaded newer image for " + ref}})
	return nil
}

// chargePull charges the pulled image to the caller's tenant against its max_images_size. A
// refused charge takes back the tag the pull made, unless the tag was there before or some
// tenant holds it, so a refused pull leaves the store as it was.
func (s *Server) chargePull(ctx context.Context, c *call, ref string, desc ocispec.Descriptor, existed bool) error {
	st := s.eng.Store()
	m, err := st.Manifest(desc)
	if err != nil {
		return err
	}
	size := desc.Size + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	who := engine.Caller{Identity: engine.Identity{UID: c.who.UID, GID: c.who.GID, Principal: "bulwarkd"}, Tenant: c.who.Tenant}
	charged := s.eng.ChargeImage(ctx, who, ref, desc.Digest, size)
	if charged == nil || existed {
		return charged
	}
	if holders, err := s.holds.holders(ref); err != nil || len(holders) != 0 {
		return errors.Join(charged, err)
	}
	if err := st.Remove(ref); err != nil {
		return errors.Join(charged, fmt.Errorf("take back the refused pull's tag %s: %w", ref, err))
	}
	return charged
}

// noCredentials refuses registry credentials: the daemon pulls with none (a tenant's secret is
// not to be used by a shared daemon for a store every tenant sees), rather than ignoring them.
func noCredentials(header string) error {
	if header == "" {
		return nil
	}
	b, err := base64.URLEncoding.DecodeString(header)
	if err != nil {
		if b, err = base64.StdEncoding.DecodeString(header); err != nil {
			return statusError(http.StatusBadRequest, "%s: not base64", registry.AuthHeader)
		}
	}
	var ac registry.AuthConfig
	if err := json.Unmarshal(b, &ac); err != nil {
		return statusError(http.StatusBadRequest, "%s: %v", registry.AuthHeader, err)
	}
	if ac.Username != "" || ac.Password != "" || ac.Auth != "" || ac.IdentityToken != "" || ac.RegistryToken != "" {
		return notImplemented("registry credentials (the daemon pulls anonymously)")
	}
	return nil
}

// imageRemove is docker rmi: the caller's hold on a reference ends; the reference leaves the
// store when no tenant holds it and no container uses it. A container of the caller's that uses
// the image refuses it (409), as with Docker; force does not override that.
func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request, c *call) error {
	if boolParam(r, "noprune") {
		return notImplemented("rmi --no-prune (the store keeps no untagged image)")
	}
	found, _, err := s.findImage(c.image)
	if err != nil {
		return err
	}
	for _, rec := range s.recs.list(c.who.Tenant) {
		if s.usesImage(rec, found) {
			why := "(must force)"
			if boolParam(r, "force") {
				why = "(bulwarkd does not force it)"
			}
			return errdefs.Errorf(errdefs.ErrConflict, "conflict: unable to remove repository reference %q %s - container %s is using its referenced image %s",
				c.image, why, rec.ID[:12], found.manifest.Config.Digest.Encoded()[:12])
		}
	}
	left := []string(nil)
	if !c.who.Operator {
		if left, err = s.holds.drop(c.image, c.who.Tenant); err != nil {
			return err
		}
	} else if err := s.holds.release(c.image); err != nil {
		return err
	}
	resp := []image.DeleteResponse{{Untagged: c.image}}
	inUse, err := s.imageInUse(found)
	if err != nil {
		return err
	}
	if len(left) == 0 && !inUse {
		if err := s.eng.Store().Remove(c.image); err != nil {
			return err
		}
		if _, _, err := s.findImage(found.manifest.Config.Digest.String()); errdefs.Class(err) == errdefs.ErrNotFound {
			resp = append(resp, image.DeleteResponse{Deleted: found.manifest.Config.Digest.String()})
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// usesImage says whether rec's container runs (or was created to run) the image v.
func (s *Server) usesImage(rec *record, v *imageView) bool {
	if ctr, err := s.eng.Inspect(rec.ID, engine.Caller{Identity: engine.Identity{UID: rec.UID, Principal: "bulwarkd"}, Tenant: rec.Tenant}); err == nil && ctr.Image.Digest != "" {
		return ctr.Image.Digest == v.desc.Digest.String()
	}
	desc, err := s.eng.Store().Resolve(rec.Request.Image)
	return err == nil && desc.Digest == v.desc.Digest
}

// imageInUse says whether any container, of any tenant, daemon's or CLI's, uses the image v.
func (s *Server) imageInUse(v *imageView) (bool, error) {
	for _, rec := range s.recs.all() {
		if s.usesImage(rec, v) {
			return true, nil
		}
	}
	du, err := s.eng.DiskUsage(engine.Caller{}, false)
	if err != nil {
		return false, err
	}
	for _, u := range du.Images {
		if u.Digest == v.desc.Digest.String() && u.Containers > 0 {
			return true, nil
		}
	}
	return false, nil
}
