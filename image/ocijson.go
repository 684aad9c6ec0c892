package image

import (
	"strconv"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"bulwark.dev/bulwark/image/internal/untar"
	"bulwark.dev/bulwark/internal/jsontext"
)

// The store's documents on a run's path (its index, an image's manifest and configuration, a
// layer's record) are read by hand (jsontext.Reader: to exactly the value json.Unmarshal gives,
// which decodes any document they do not take). TestOCIReadersKnowEveryField and
// TestOCIReadersAreEncodingJSON check that they know every field of their types and that
// whatever they take is json.Unmarshal's value.

var (
	indexKeys      = []string{"schemaVersion", "mediaType", "artifactType", "manifests", "subject", "annotations"}
	manifestKeys   = []string{"schemaVersion", "mediaType", "artifactType", "config", "layers", "subject", "annotations"}
	descriptorKeys = []string{"mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType"}
	platformKeys   = []string{"architecture", "os", "os.version", "os.features", "variant"}
	imageKeys      = []string{"created", "author", "architecture", "os", "os.version", "os.features", "variant", "config", "rootfs", "history"}
	configKeys     = []string{"User", "ExposedPorts", "Env", "Entrypoint", "Cmd", "Volumes", "WorkingDir", "Labels", "StopSignal", "ArgsEscaped"}
	rootfsKeys     = []string{"type", "diff_ids"}
	historyKeys    = []string{"created", "created_by", "author", "comment", "empty_layer"}
	layerKeys      = []string{"diffID", "digest", "dir", "size", "report", "compression"}
	reportKeys     = []string{"entries", "bytes", "strippedSetuid", "droppedXattrs", "whiteouts", "droppedDevices", "opaqueDirs"}
)

func readIndex(r *jsontext.Reader, v *ocispec.Index) bool {
	return r.Object(indexKeys, func(key string) bool {
		switch key {
		case "schemaVersion":
			return readInt(r, &v.SchemaVersion)
		case "mediaType":
			return r.String(&v.MediaType)
		case "artifactType":
			return r.String(&v.ArtifactType)
		case "manifests":
			return readDescriptors(r, &v.Manifests)
		case "subject":
			return readDescriptorPointer(r, &v.Subject)
		default: // annotations
			return r.StringMap(&v.Annotations)
		}
	})
}

func readManifest(r *jsontext.Reader, v *ocispec.Manifest) bool {
	return r.Object(manifestKeys, func(key string) bool {
		switch key {
		case "schemaVersion":
			return readInt(r, &v.SchemaVersion)
		case "mediaType":
			return r.String(&v.MediaType)
		case "artifactType":
			return r.String(&v.ArtifactType)
		case "config":
			return readDescriptor(r, &v.Config)
		case "layers":
			return readDescriptors(r, &v.Layers)
		case "subject":
			return readDescriptorPointer(r, &v.Subject)
		default: // annotations
			return r.StringMap(&v.Annotations)
		}
	})
}

func readDescriptor(r *jsontext.Reader, v *ocispec.Descriptor) bool {
	return r.Object(descriptorKeys, func(key string) bool {
		switch key {
		case "mediaType":
			return r.String(&v.MediaType)
		case "digest":
			return r.String((*string)(&v.Digest))
		case "size":
			return r.Int(&v.Size, 64)
		case "urls":
			return r.Strings(&v.URLs)
		case "annotations":
			return r.StringMap(&v.Annotations)
		case "data":
			return r.Null() // base64 content: left to encoding/json
		case "platform":
			if r.Null() {
				v.Platform = nil
				return true
			}
			v.Platform = new(ocispec.Platform)
			return r.Object(platformKeys, func(key string) bool { return readPlatformField(r, v.Platform, key) })
		default: // artifactType
			return r.String(&v.ArtifactType)
		}
	})
}

func readDescriptors(r *jsontext.Reader, p *[]ocispec.Descriptor) bool {
	return r.Array(func(null bool) {
		if null {
			*p = nil
		} else {
			*p = []ocispec.Descriptor{}
		}
	}, func() bool {
		var d ocispec.Descriptor
		if !readDescriptor(r, &d) {
			return false
		}
		*p = append(*p, d)
		return true
	})
}

func readDescriptorPointer(r *jsontext.Reader, p **ocispec.Descriptor) bool {
	if r.Null() {
		*p = nil
		return true
	}
	*p = new(ocispec.Descriptor)
	return readDescriptor(r, *p)
}

func readPlatformField(r *jsontext.Reader, v *ocispec.Platform, key string) bool {
	switch key {
	case "architecture":
		return r.String(&v.Architecture)
	case "os":
		return r.String(&v.OS)
	case "os.version":
		return r.String(&v.OSVersion)
	case "os.features":
		return r.Strings(&v.OSFeatures)
	default: // variant
		return r.String(&v.Variant)
	}
}

func readImage(r *jsontext.Reader, v *ocispec.Image) bool {
	return r.Object(imageKeys, func(key string) bool {
		switch key {
		case "created":
			return r.TimePointer(&v.Created)
		case "author":
			return r.String(&v.Author)
		case "config":
			return r.Object(configKeys, func(key string) bool { return readImageConfigField(r, &v.Config, key) })
		case "rootfs":
			return r.Object(rootfsKeys, func(key string) bool {
				if key == "type" {
					return r.String(&v.RootFS.Type)
				}
				return readDigests(r, &v.RootFS.DiffIDs)
			})
		case "history":
			return r.Array(func(null bool) {
				if null {
					v.History = nil
				} else {
					v.History = []ocispec.History{}
				}
			}, func() bool {
				var h ocispec.History
				if !r.Object(historyKeys, func(key string) bool { return readHistoryField(r, &h, key) }) {
					return false
				}
				v.History = append(v.History, h)
				return true
			})
		default: // the platform's, promoted
			return readPlatformField(r, &v.Platform, key)
		}
	})
}

func readImageConfigField(r *jsontext.Reader, v *ocispec.ImageConfig, key string) bool {
	switch key {
	case "User":
		return r.String(&v.User)
	case "ExposedPorts":
		return r.Set(&v.ExposedPorts)
	case "Env":
		return r.Strings(&v.Env)
	case "Entrypoint":
		return r.Strings(&v.Entrypoint)
	case "Cmd":
		return r.Strings(&v.Cmd)
	case "Volumes":
		return r.Set(&v.Volumes)
	case "WorkingDir":
		return r.String(&v.WorkingDir)
	case "Labels":
		return r.StringMap(&v.Labels)
	case "StopSignal":
		return r.String(&v.StopSignal)
	default: // ArgsEscaped
		return r.Bool(&v.ArgsEscaped)
	}
}

func readHistoryField(r *jsontext.Reader, v *ocispec.History, key string) bool {
	switch key {
	case "created":
		return r.TimePointer(&v.Created)
	case "created_by":
		return r.String(&v.CreatedBy)
	case "author":
		return r.String(&v.Author)
	case "comment":
		return r.String(&v.Comment)
	default: // empty_layer
		return r.Bool(&v.EmptyLayer)
	}
}

func readDigests(r *jsontext.Reader, p *[]digest.Digest) bool {
	return r.Array(func(null bool) {
		if null {
			*p = nil
		} else {
			*p = []digest.Digest{}
		}
	}, func() bool {
		var d string
		if !r.String(&d) {
			return false
		}
		*p = append(*p, digest.Digest(d))
		return true
	})
}

// readInt reads an int field (a null leaves it as it is).
func readInt(r *jsontext.Reader, p *int) bool {
	if r.Null() {
		return true
	}
	var n int64
	if !r.Int(&n, strconv.IntSize) {
		return false
	}
	*p = int(n)
	return true
}

func readLayerRecordJSON(r *jsontext.Reader, v *layerRecord) bool {
	return r.Object(layerKeys, func(key string) bool {
		switch key {
		case "diffID":
			return r.String((*string)(&v.DiffID))
		case "digest":
			return r.String((*string)(&v.Digest))
		case "dir":
			return r.String(&v.Dir)
		case "size":
			return r.Int(&v.Size, 64)
		case "compression":
			var c int
			if !readInt(r, &c) {
				return false
			}
			v.Compression = Compression(c)
			return true
		default: // report
			if r.Null() {
				v.Report = nil
				return true
			}
			v.Report = new(untar.Report)
			return r.Object(reportKeys, func(key string) bool { return readReportField(r, v.Report, key) })
		}
	})
}

func readReportField(r *jsontext.Reader, v *untar.Report, key string) bool {
	switch key {
	case "entries":
		return readInt(r, &v.Entries)
	case "bytes":
		return r.Int(&v.Bytes, 64)
	case "strippedSetuid":
		return r.Strings(&v.StrippedSetuid)
	case "droppedXattrs":
		return r.Strings(&v.DroppedXattrs)
	case "whiteouts":
		return readInt(r, &v.Whiteouts)
	case "droppedDevices":
		return r.Strings(&v.DroppedDevices)
	default: // opaqueDirs
		return readInt(r, &v.OpaqueDirs)
	}
}
