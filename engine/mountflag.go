package engine

import (
	"encoding/csv"
	"fmt"
	"path"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"bulwark.dev/bulwark/volume"
)

// Markers a -v or --mount puts on a volumeType mount for resolveVolumes, which removes them:
// optNoCopy skips the fill from the image (docker's volume-nocopy, -v …:nocopy), optExec asks
// for the volume without noexec (policy must grant it: exec_volumes).
const (
	optNoCopy = "nocopy"
	optExec   = "exec"
)

// parseMount turns one docker --mount value (comma-separated KEY[=VALUE] fields, CSV-quoted
// where a value holds a comma) into a spec mount, with docker's semantics: type volume (the
// default), bind or tmpfs; a volume without source is anonymous; a bind is writable unless
// readonly (policy decides whether its source may be written), and its source must exist. A
// key docker has that does not apply here, or one it does not have, is refused, never ignored.
func parseMount(v string) (specs.Mount, error) {
	r := csv.NewReader(strings.NewReader(v))
	fields, err := r.Read()
	if err != nil {
		return specs.Mount{}, fmt.Errorf("mount %q: %w", v, err)
	}
	bad := func(format string, a ...any) (specs.Mount, error) {
		return specs.Mount{}, fmt.Errorf("mount %q: %s", v, fmt.Sprintf(format, a...))
	}
	typ, src, dst := "volume", "", ""
	readOnly, noCopy, exec, recursive := false, false, false, true
	var size, mode string
	kind := map[string]string{} // keys that belong to one type
	for _, f := range fields {
		key, val, hasVal := strings.Cut(strings.TrimSpace(f), "=")
		key = strings.ToLower(key)
		flag := func() (bool, error) {
			if !hasVal {
				return true, nil
			}
			b, err := strconv.ParseBool(val)
			if err != nil {
				return false, fmt.Errorf("mount %q: %s=%q: want true or false", v, key, val)
			}
			return b, nil
		}
		if !hasVal && key != "readonly" && key != "ro" && key != "volume-nocopy" && key != "bind-nonrecursive" && key != optExec {
			return bad("%q: want KEY=VALUE", f)
		}
		switch key {
		case "type":
			typ = val
		case "source", "src":
			src = val
		case "destination", "dst", "target":
			dst = val
		case "readonly", "ro":
			if readOnly, err = flag(); err != nil {
				return specs.Mount{}, err
			}
		case optExec:
			// Bulwark's own key (docker has none): a volume without noexec, where policy grants it.
			if exec, err = flag(); err != nil {
				return specs.Mount{}, err
			}
			kind[key] = "volume"
		case "volume-nocopy":
			if noCopy, err = flag(); err != nil {
				return specs.Mount{}, err
			}
			kind[key] = "volume"
		case "volume-driver":
			if val != volume.Driver {
				return bad("volume-driver %q: the only driver is %q", val, volume.Driver)
			}
			kind[key] = "volume"
		case "bind-recursive":
			switch val {
			case "enabled":
				recursive = true
			case "disabled":
				recursive = false
			default:
				return bad("bind-recursive=%q: want enabled or disabled (readonly and writable are not supported)", val)
			}
			kind[key] = "bind"
		case "bind-nonrecursive":
			nr, err := flag()
			if err != nil {
				return specs.Mount{}, err
			}
			recursive = !nr
			kind[key] = "bind"
		case "tmpfs-size":
			n, err := parseSize(val)
			if err != nil {
				return bad("tmpfs-size=%q: %v", val, err)
			}
			size = "size=" + strconv.FormatInt(n, 10)
			kind[key] = "tmpfs"
		case "tmpfs-mode":
			m, err := strconv.ParseUint(val, 8, 32)
			if err != nil || m&^0o1777 != 0 {
				return bad("tmpfs-mode=%q: want octal permission bits (e.g. 1770)", val)
			}
			mode = fmt.Sprintf("mode=%04o", m)
			kind[key] = "tmpfs"
		case "bind-propagation", "volume-opt", "volume-label", "volume-subpath", "bind-create-src", "consistency", "tmpfs-options", "image-subpath":
			return bad("%s is not supported (mounts are private; volumes take no options, labels or subpaths here)", key)
		default:
			return bad("unknown key %q (known: type, source, destination, readonly, volume-nocopy, volume-driver, bind-recursive, bind-nonrecursive, tmpfs-size, tmpfs-mode, exec)", key)
		}
	}
	if dst == "" {
		return bad("destination is required")
	}
	if !path.IsAbs(dst) {
		return bad("the destination must be an absolute path")
	}
	for key, want := range kind {
		if want != typ {
			return bad("%s applies to type=%s, not type=%s", key, want, typ)
		}
	}
	switch typ {
	case "volume":
		if src != "" && !volume.ValidName(src) {
			return bad("source %q: want a volume name ([A-Za-z0-9][A-Za-z0-9_.-]*) or none (an anonymous volume)", src)
		}
		opts := []string{"rw"}
		if readOnly {
			opts = []string{"ro"}
		}
		if noCopy {
			opts = append(opts, optNoCopy)
		}
		if exec {
			opts = append(opts, optExec)
		}
		return specs.Mount{Destination: dst, Type: volumeType, Source: src, Options: opts}, nil
	case "bind":
		if !path.IsAbs(src) {
			return bad("a bind needs an absolute source path")
		}
		opts := []string{"rbind", "rw"}
		if !recursive {
			opts[0] = "bind"
		}
		if readOnly {
			opts[1] = "ro"
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}, nil
	case "tmpfs":
		if src != "" {
			return bad("a tmpfs takes no source")
		}
		opts := []string{"nosuid", "nodev", "noexec"}
		if readOnly {
			opts = append(opts, "ro")
		}
		for _, o := range []string{size, mode} {
			if o != "" {
				opts = append(opts, o)
			}
		}
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	}
	return bad("type %q: want volume, bind or tmpfs", typ)
}

// parseSize reads a byte count with an optional k, m or g suffix (powers of 1024), as docker's
// tmpfs-size does.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k':
			mult, num = 1<<10, num[:n-1]
		case 'm':
			mult, num = 1<<20, num[:n-1]
		case 'g':
			mult, num = 1<<30, num[:n-1]
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a positive size (e.g. 64m)")
	}
	return n * mult, nil
}
