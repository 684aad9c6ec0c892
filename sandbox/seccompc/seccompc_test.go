package seccompc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"bulwark.dev/bulwark/profiles"
	"bulwark.dev/bulwark/sandbox/internal/seccomp"
	"bulwark.dev/bulwark/sandbox/internal/seccomp/compiler"
	"bulwark.dev/bulwark/sandbox/setup"
)

// TestServe: the helper answers a runtime of its build with the compiler's program as an entry;
// it refuses a runtime of another build, a malformed profile and extra arguments, answering
// nothing.
func TestServe(t *testing.T) {
	p := profiles.DefaultSeccomp()
	in, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := serve([]string{setup.BuildID()}, bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want, err := compiler.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), seccomp.Reply(want, compiler.LibraryVersion())) {
		t.Error("the reply is not the compiler's program")
	}
	for name, c := range map[string]struct {
		args []string
		in   string
	}{
		"another build":    {[]string{setup.BuildID() + "x"}, string(in)},
		"no build":         {nil, string(in)},
		"extra argument":   {[]string{setup.BuildID(), "x"}, string(in)},
		"not a profile":    {[]string{setup.BuildID()}, "[1]"},
		"an unknown field": {[]string{setup.BuildID()}, `{"defaultAction":"SCMP_ACT_ERRNO","bogus":1}`},
	} {
		var out bytes.Buffer
		if err := serve(c.args, strings.NewReader(c.in), &out); err == nil || out.Len() != 0 {
			t.Errorf("%s: err %v, %d bytes answered", name, err, out.Len())
		}
	}
}
