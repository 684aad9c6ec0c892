package op

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"bulwark.dev/bulwark/engine"
	"bulwark.dev/bulwark/errdefs"
	"golang.org/x/sys/unix"
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

// TestHandTake: an Op goes whole through the sealed file Hand makes, however large (one
// environment string holds 128 KiB at most); Take refuses a descriptor that is not a sealed
// memory file, and says when there is none.
func TestHandTake(t *testing.T) {
	env := make([]string, 0, 3000)
	for i := range cap(env) {
		env = append(env, fmt.Sprintf("VAR%04d=%0100d", i, i))
	}
	o := Op{Command: Run, Host: "unix:///run/bulwark/bulwark.sock", Run: &engine.Request{Image: "busybox:1", Env: env}}
	kv, err := Hand(&o)
	if err != nil {
		t.Fatal(err)
	}
	name, _, _ := strings.Cut(kv, "=")
	t.Setenv(name, strings.TrimPrefix(kv, name+"="))
	got, err := Take()
	if err != nil || !reflect.DeepEqual(*got, o) {
		t.Fatalf("took %v, %v", got != nil, err)
	}
	if _, ok := os.LookupEnv(Env); ok {
		t.Error("Take left Env set")
	}
	if _, err := Take(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Take without Env: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "op")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.Dup(int(f.Fd())) // Take closes what it is given
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(Env, fmt.Sprint(fd))
	if _, err := Take(); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("Take of a plain file: %v", err)
	}
}
