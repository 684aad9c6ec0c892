package bench

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// tag is one reference of the image store (images/index.json, an OCI layout).
type tag struct {
	Ref    string
	Digest string
}

// maxMetaBlob bounds the manifests and configs a scan reads.
const maxMetaBlob = 4 << 20

// tags reads the store's index without opening the store (opening may create directories).
func (e *Env) tags() ([]tag, error) {
	b, err := os.ReadFile(filepath.Join(e.Root, "images", "index.json"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("images/index.json: %w", err)
	}
	var out []tag
	for _, m := range idx.Manifests {
		if ref := m.Annotations[ocispec.AnnotationRefName]; ref != "" {
			out = append(out, tag{Ref: ref, Digest: string(m.Digest)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// blob reads a small blob of the store by digest, checking its algorithm and hex.
func (e *Env) blob(d string, v any) error {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg != "sha256" || len(hex) != 64 || strings.ContainsAny(hex, "/.") {
		return fmt.Errorf("bad digest %q", d)
	}
	f, err := os.Open(filepath.Join(e.Root, "images", "blobs", alg, hex))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() > maxMetaBlob {
		return fmt.Errorf("blob %s: %d bytes", d, st.Size())
	}
	return json.NewDecoder(f).Decode(v)
}

// probeImagesSigned: every tag resolves through the verified trust metadata to the digest the
// store has for it.
func probeImagesSigned(e *Env, c *Control) Outcome {
	tags, err := e.tags()
	if err != nil {
		return e.errOutcome(c, err)
	}
	if len(tags) == 0 {
		return skip("no images")
	}
	tv := e.trust()
	if tv.err != nil {
		return fail("trust metadata does not verify: %v", tv.err)
	}
	var bad, good []string
	for _, t := range tags {
		d, role, err := tv.lookup(t.Ref)
		switch {
		case err != nil:
			bad = append(bad, err.Error())
		case d != t.Digest:
			bad = append(bad, fmt.Sprintf("%s: store has %s, %s signed %s", t.Ref, t.Digest, role, d))
		default:
			good = append(good, fmt.Sprintf("%s %s (signed by %s)", t.Ref, t.Digest, role))
		}
	}
	if len(bad) > 0 {
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%d of %d tags unsigned or not matching", len(bad), len(tags)), Details: bad}
	}
	return Outcome{Status: Pass, Actual: fmt.Sprintf("%d tags signed, digests match (%s)", len(tags), tv.source), Details: good}
}

// probeImagesUser: an image that declares a user does not declare root.
func probeImagesUser(e *Env, c *Control) Outcome {
	tags, err := e.tags()
	if err != nil {
		return e.errOutcome(c, err)
	}
	if len(tags) == 0 {
		return skip("no images")
	}
	var bad, details []string
	for _, t := range tags {
		var m ocispec.Manifest
		var cfg ocispec.Image
		if err := e.blob(t.Digest, &m); err != nil {
			return e.errOutcome(c, fmt.Errorf("%s manifest: %w", t.Ref, err))
		}
		if err := e.blob(string(m.Config.Digest), &cfg); err != nil {
			return e.errOutcome(c, fmt.Errorf("%s config: %w", t.Ref, err))
		}
		u := cfg.Config.User
		user, _, _ := strings.Cut(u, ":")
		switch {
		case u == "":
			details = append(details, t.Ref+": no user declared (runs as container root, mapped to an unprivileged host id)")
		case user == "0" || user == "root":
			bad = append(bad, t.Ref+": user "+u)
		default:
			details = append(details, t.Ref+": user "+u)
		}
	}
	if len(bad) > 0 {
		return Outcome{Status: Fail, Actual: fmt.Sprintf("%d images declare root", len(bad)), Details: append(bad, details...)}
	}
	return Outcome{Status: Pass, Actual: fmt.Sprintf("no image of %d declares root", len(tags)), Details: details}
}

// probeImagesSetID lists setuid and setgid files of the unpacked layers (the floor's
// no_new_privs makes them inert; the list is for the operator to review).
func probeImagesSetID(e *Env, c *Control) Outcome {
	base := filepath.Join(e.Root, "layers", "sha256")
	layers, err := os.ReadDir(base)
	if os.IsNotExist(err) {
		return info("no unpacked layers")
	}
	if err != nil {
		return e.errOutcome(c, err)
	}
	var found []string
	for _, l := range layers {
		dir := filepath.Join(base, l.Name())
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 || d.IsDir() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if m := fi.Mode(); m&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				rel, _ := filepath.Rel(dir, p)
				found = append(found, fmt.Sprintf("layer %.12s: /%s %s", l.Name(), rel, m))
			}
			return nil
		})
		if err != nil {
			return e.errOutcome(c, err)
		}
	}
	return Outcome{Status: Info, Actual: fmt.Sprintf("%d setuid/setgid files in %d layers", len(found), len(layers)), Details: found}
}

// probeImagesCount reports how many tags and unpacked layers the store keeps.
func probeImagesCount(e *Env, c *Control) Outcome {
	tags, err := e.tags()
	if err != nil {
		return e.errOutcome(c, err)
	}
	layers, _ := os.ReadDir(filepath.Join(e.Root, "layers", "sha256"))
	return info("%d tags, %d unpacked layers", len(tags), len(layers))
}
