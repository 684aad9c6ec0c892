package engine

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// parseVolume turns one -v SRC:DST[:MODE] into a bind mount. MODE is ro (the default: a bind is
// read-only unless asked otherwise) or rw; anything else is refused, never ignored.
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
		return specs.Mount{}, fmt.Errorf("volume %q: the source must be an absolute host path (named volumes do not exist here)", v)
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
