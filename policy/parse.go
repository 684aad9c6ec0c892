package policy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"bulwark.dev/bulwark/internal/jsonschema"
)

// SchemaJSON is the JSON Schema of the request document.
//
//go:embed schema/run-v1.schema.json
var SchemaJSON []byte

var compiledSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	return jsonschema.Compile(SchemaJSON)
})

// InvalidRequestError says why a request document was refused; Path is the field.
type InvalidRequestError struct {
	Path string
	Err  error
}

func (e *InvalidRequestError) Error() string {
	if e.Path == "" {
		return "invalid request: " + e.Err.Error()
	}
	return fmt.Sprintf("invalid request: %s: %v", e.Path, e.Err)
}

func (e *InvalidRequestError) Unwrap() error { return e.Err }

// ParseRequest reads a request document (e.g. a file given to `bulwark policy eval`), validates
// it against the schema, and normalises it the way Build would: capability names, the bind and
// read-only summaries, and bind sources resolved on this host.
func ParseRequest(data []byte) (*Request, error) {
	if err := Validate(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		return nil, &InvalidRequestError{Err: err}
	}
	for i, c := range r.Capabilities {
		r.Capabilities[i] = NormalizeCapability(c)
	}
	root, err := ResolveHostPath(r.StateRoot)
	if err != nil {
		return nil, &InvalidRequestError{Path: "stateRoot", Err: err}
	}
	r.StateRoot = root
	if err := checkMountSummaries(r.Mounts); err != nil {
		return nil, err
	}
	for i := range r.Mounts {
		m := &r.Mounts[i]
		if !m.Bind {
			continue
		}
		src, err := ResolveHostPath(m.Source)
		if err != nil {
			return nil, &InvalidRequestError{Path: fmt.Sprintf("mounts[%d].source", i), Err: err}
		}
		m.Source = src
	}
	for i := range r.DockerVolumes {
		src, err := ResolveHostPath(r.DockerVolumes[i].Source)
		if err != nil {
			return nil, &InvalidRequestError{Path: fmt.Sprintf("dockerVolumes[%d].source", i), Err: err}
		}
		r.DockerVolumes[i].Source = src
	}
	if r.Sysctls == nil {
		r.Sysctls = map[string]string{}
	}
	if r.Annotations == nil {
		r.Annotations = map[string]string{}
	}
	return &r, nil
}

// Validate checks a request document against the schema.
func Validate(data []byte) error {
	s, err := compiledSchema()
	if err != nil {
		return fmt.Errorf("request schema: %w", err)
	}
	if err := s.ValidateJSON(data); err != nil {
		if se, ok := err.(*jsonschema.Error); ok {
			return &InvalidRequestError{Path: se.Path, Err: fmt.Errorf("%s", se.Message)}
		}
		return &InvalidRequestError{Err: err}
	}
	return nil
}

// checkRequest is the cheap structural check for a Request built in Go (ParseRequest already
// validated raw documents against the schema): the fields policy keys on must be set.
func checkRequest(r *Request) error {
	switch {
	case r.APIVersion != APIVersion:
		return &InvalidRequestError{Path: "apiVersion", Err: fmt.Errorf("must be %s, not %q", APIVersion, r.APIVersion)}
	case r.Tenant == "":
		return &InvalidRequestError{Path: "tenant", Err: fmt.Errorf("required field is missing")}
	case r.Operation != OpCreate && r.Operation != OpRun && r.Operation != OpExec:
		return &InvalidRequestError{Path: "operation", Err: fmt.Errorf("must be create, run or exec, not %q", r.Operation)}
	case !filepath.IsAbs(r.StateRoot):
		return &InvalidRequestError{Path: "stateRoot", Err: fmt.Errorf("must be an absolute path, not %q", r.StateRoot)}
	case r.Seccomp.Profile == "":
		return &InvalidRequestError{Path: "seccomp.profile", Err: fmt.Errorf("required field is missing")}
	}
	return checkMountSummaries(r.Mounts)
}

// checkMountSummaries enforces what the default policy relies on: a mount's bind and readOnly
// fields agree with its type and options, so a bind cannot pass as something else.
func checkMountSummaries(ms []Mount) error {
	for i, m := range ms {
		bind, ro := IsBind(m.Type, m.Options), slices.Contains(m.Options, "ro")
		if m.Bind != bind || m.ReadOnly != ro {
			return &InvalidRequestError{Path: fmt.Sprintf("mounts[%d]", i),
				Err: fmt.Errorf("bind=%v readOnly=%v disagree with type %q and options %v", m.Bind, m.ReadOnly, m.Type, m.Options)}
		}
	}
	return nil
}
