package op

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
)

// TestDecode: every command bulwark sends decodes back whole; anything else — an unknown
// command or field, another command's request, the wrong number of containers, a host the client
// would refuse — is refused.
func TestDecode(t *testing.T) {
	const host = "unix:///run/bulwark/bulwark.sock"
	for _, o := range []Op{
		{Command: Run, Run: &engine.Request{Image: "busybox:1", Args: []string{"true"}, Env: []string{"A=1"}, Memory: 64 << 20, Remove: true}, DryRun: true},
		{Command: Exec, IDs: []string{"c"}, Exec: &engine.ExecRequest{Args: []string{"sh"}, TTYRows: 3}, Interactive: true},
		{Command: PS, All: true, Quiet: true},
		{Command: Inspect, IDs: []string{"a", "b"}},
		{Command: Logs, IDs: []string{"c"}, Follow: true, Timestamps: true},
		{Command: Stop, IDs: []string{"c"}, Timeout: 3 * time.Second},
		{Command: Kill, IDs: []string{"c"}, Signal: "9"},
		{Command: Remove, IDs: []string{"c", "d"}, Force: true, Volumes: true},
		{Command: AuditVerify},
		{Command: AuditTail, Lines: 5},
	} {
		o.Host = host
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(string(b))
		if err != nil || !reflect.DeepEqual(*got, o) {
			t.Errorf("%s: decoded %+v, %v; want %+v", o.Command, got, err, o)
		}
	}
	for name, s := range map[string]string{
		"command":      `{"command":"image ls","host":"` + host + `"}`,
		"field":        `{"command":"ps","host":"` + host + `","tenant":"other"}`,
		"no request":   `{"command":"run","host":"` + host + `"}`,
		"other's":      `{"command":"ps","host":"` + host + `","run":{"image":"x"}}`,
		"logs of two":  `{"command":"logs","host":"` + host + `","ids":["a","b"]}`,
		"exec of none": `{"command":"exec","host":"` + host + `","exec":{}}`,
		"rm of none":   `{"command":"rm","host":"` + host + `"}`,
		"host":         `{"command":"ps","host":"tcp://127.0.0.1:2376"}`,
		"json":         `{"command":`,
	} {
		if o, err := Decode(s); err == nil {
			t.Errorf("%s: decoded %+v", name, o)
		}
	}
}

func TestParseHost(t *testing.T) {
	if p, err := ParseHost("unix:///run/bulwark/bulwark.sock"); err != nil || p != "/run/bulwark/bulwark.sock" {
		t.Errorf("unix: %q %v", p, err)
	}
	for _, bad := range []string{"/run/bulwark.sock", "tcp://127.0.0.1:2376", "unix://relative.sock", "ssh://host", ""} {
		if _, err := ParseHost(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
