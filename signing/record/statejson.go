package record

import "bulwark.dev/bulwark/internal/jsontext"

// The record and the client configuration are read by hand on every run's path
// (jsontext.Reader: to exactly the value json.Unmarshal gives, which decodes any document they
// do not take). TestReadersAreEncodingJSON checks them.

var (
	stateKeys  = []string{"root", "timestamp", "root_version", "expires", "targets"}
	targetKeys = []string{"name", "digest", "length", "mediaType", "role"}
	clientKeys = []string{"remote"}
)

func readState(r *jsontext.Reader, v *State) bool {
	return r.Object(stateKeys, func(key string) bool {
		switch key {
		case "root":
			return r.String(&v.Root)
		case "timestamp":
			return r.String(&v.Timestamp)
		case "root_version":
			return r.Int(&v.RootVersion, 64)
		case "expires":
			return r.Time(&v.Expires)
		default: // targets
			return r.Map(func(null bool) {
				if null {
					v.Targets = nil
				} else {
					v.Targets = map[string]*Target{}
				}
			}, func(path string) bool {
				t := new(Target)
				v.Targets[path] = t
				return readTarget(r, t)
			})
		}
	})
}

func readTarget(r *jsontext.Reader, v *Target) bool {
	return r.Object(targetKeys, func(key string) bool {
		switch key {
		case "name":
			return r.String(&v.Name)
		case "digest":
			return r.String((*string)(&v.Digest))
		case "length":
			return r.Int(&v.Length, 64)
		case "mediaType":
			return r.String(&v.MediaType)
		default: // role
			return r.String(&v.Role)
		}
	})
}

func readClientConfig(r *jsontext.Reader, v *clientConfig) bool {
	return r.Object(clientKeys, func(string) bool { return r.String(&v.Remote) })
}
