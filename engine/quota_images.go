package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"bulwark.dev/bulwark/audit"
	"bulwark.dev/bulwark/internal/atomicfile"
	"bulwark.dev/bulwark/policy/document"
)

// Image storage quotas: the image store is shared by every tenant (content-addressed, stored
// once), so a tenant is charged for the images it brings in — an image pulled for it — each
// image's manifest, config and layer blobs at their stored size. A charge is a file
// (<root>/quota/<tenant>/images/<algorithm>-<hex>.json) that counts while the store has a tag
// for that manifest: removing the image ends it, with nothing to release.

// imageCharge is one image charged to a tenant.
type imageCharge struct {
	Ref    string        `json:"ref"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

func (e *Engine) imageChargePath(tenant string, d digest.Digest) string {
	return filepath.Join(e.quotaDir(tenant), "images", d.Algorithm().String()+"-"+d.Encoded()+".json")
}

// imagesCharged is the bytes of the images charged to tenant that the store still has; charges
// of images gone are removed. The caller holds the tenant's quota lock.
func (e *Engine) imagesCharged(tenant string) (int64, error) {
	files, err := os.ReadDir(filepath.Join(e.quotaDir(tenant), "images"))
	if errors.Is(err, os.ErrNotExist) || len(files) == 0 {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count images: %w", err)
	}
	imgs, err := e.store.List()
	if err != nil {
		return 0, err
	}
	stored := map[digest.Digest]bool{}
	for _, im := range imgs {
		stored[im.Descriptor.Digest] = true
	}
	var total int64
	for _, f := range files {
		p := filepath.Join(e.quotaDir(tenant), "images", f.Name())
		var c imageCharge
		b, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(b, &c)
		}
		if err != nil {
			return 0, fmt.Errorf("image charge %s: unreadable (%v)", p, err)
		}
		if !stored[c.Digest] {
			os.Remove(p)
			continue
		}
		total += c.Size
	}
	return total, nil
}

// ChargeImage charges the stored image ref (manifest dgst, size bytes) to who's tenant, if its
// max_images_size allows it, under the tenant's quota lock; an image already charged to it is not
// charged again. A refusal is a *document.DeniedError with QUOTA_IMAGES_EXCEEDED, audited. An
// image pulled for a tenant is charged before it is tagged; the charge counts once it is.
func (e *Engine) ChargeImage(ctx context.Context, who Caller, ref string, dgst digest.Digest, size int64) error {
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("charge image %s: %w", ref, err)
	}
	t := newTrail(e.audit, who.Identity, who.tenant(), NewID())
	t.SetImage(dgst.String())
	err := e.chargeImage(ctx, who.tenant(), imageCharge{Ref: ref, Digest: dgst, Size: size}, t)
	return errors.Join(err, t.Flush())
}

func (e *Engine) chargeImage(ctx context.Context, tenant string, c imageCharge, t *trail) error {
	pe, err := e.preparedPolicy(ctx, t)
	if err != nil {
		return err
	}
	unlock, err := e.lockQuota(tenant)
	if err != nil {
		return err
	}
	defer unlock()
	p := e.imageChargePath(tenant, c.Digest)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	usage, err := e.quotaUsage(tenant, "")
	if err != nil {
		return err
	}
	asked := document.QuotaUsage{ImagesSize: c.Size}
	d, err := pe.DecideQuota(ctx, document.QuotaRequest{Tenant: tenant, Usage: usage, Request: &asked})
	if err != nil {
		return err
	}
	attrs := map[string]string{"image": c.Ref, "usage": jsonString(usage), "request": jsonString(asked), "limits": jsonString(d.Limits)}
	if err := d.Err(); err != nil {
		attrs["reasons"] = err.Error()
		t.Add(audit.TypePolicy, "quota.refused", attrs)
		return err
	}
	t.Add(audit.TypePolicy, "quota", attrs)
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return atomicfile.Write(p, b, atomicfile.Options{})
}
