package daemon

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"bulwark.dev/bulwark/daemon/config"
)

func mapJSON(t *testing.T, body string) (*container.CreateRequest, error) {
	t.Helper()
	var req container.CreateRequest
	if err := strictDecode([]byte(body), &req); err != nil {
		return nil, err
	}
	return &req, nil
}

func TestMapCreate(t *testing.T) {
	who := config.Principal{UID: 1000, GID: 1000, Tenant: "alice"}
	id := strings.Repeat("ab", 32)
	body := `{"Image": "busybox:1", "Cmd": ["sh", "-c", "true"], "Env": ["A=1"], "User": "65534", "WorkingDir": "/tmp",
	  "Tty": false, "AttachStdout": true, "Labels": {"k": "v"},
	  "HostConfig": {"Memory": 67108864, "NanoCpus": 500000000, "PidsLimit": 64, "CapAdd": ["NET_BIND_SERVICE"],
	    "ReadonlyRootfs": true, "Tmpfs": {"/scratch": "size=1m"}, "NetworkMode": "default", "AutoRemove": true,
	    "LogConfig": {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}},
	    "RestartPolicy": {"Name": "no"}, "MemorySwappiness": -1, "Binds": ["/srv:/srv"]}}`
	req, err := mapJSON(t, body)
	if err != nil {
		t.Fatal(err)
	}
	er, warnings, err := mapCreate([]byte(body), req, who, id)
	if err != nil {
		t.Fatal(err)
	}
	if er.Tenant != "alice" || er.Identity.UID != 1000 || er.Name != id || er.Hostname != id[:12] || !er.Detach || er.Remove {
		t.Errorf("identity and naming: %+v", er)
	}
	if er.Memory != 64<<20 || er.CPUs != 0.5 || er.PidsLimit != 64 || !slices.Equal(er.CapAdd, []string{"NET_BIND_SERVICE"}) {
		t.Errorf("resources: %+v", er)
	}
	if !slices.Equal(er.Tmpfs, []string{"/scratch:size=1m"}) || er.Network != "" || er.LogMaxSize != 1<<20 || er.LogMaxFiles != 2 {
		t.Errorf("mounts, network, logs: %+v", er)
	}
	if !slices.Equal(er.Volumes, []string{"/srv:/srv:rw"}) {
		t.Errorf("a bind without mode is Docker's read-write (policy decides): %v", er.Volumes)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings for --read-only: %v", warnings)
	}
}

// Whatever bulwarkd cannot honour is refused, never dropped.
func TestMapCreateRefuses(t *testing.T) {
	who := config.Principal{UID: 1000, Tenant: "alice"}
	id := strings.Repeat("ab", 32)
	for name, tc := range map[string]struct {
		body   string
		status int
		want   string
	}{
		"healthcheck":     {`{"Image": "b", "Healthcheck": {"Test": ["CMD", "true"]}}`, 400, "Healthcheck"},
		"dns":             {`{"Image": "b", "HostConfig": {"Dns": ["1.1.1.1"]}}`, 400, "HostConfig.Dns"},
		"devices":         {`{"Image": "b", "HostConfig": {"Devices": [{"PathOnHost": "/dev/kmsg"}]}}`, 400, "HostConfig.Devices"},
		"pid host":        {`{"Image": "b", "HostConfig": {"PidMode": "host"}}`, 400, "PidMode"},
		"restart":         {`{"Image": "b", "HostConfig": {"RestartPolicy": {"Name": "always"}}}`, 501, "restart policy"},
		"seccomp file":    {`{"Image": "b", "HostConfig": {"SecurityOpt": ["seccomp=/etc/x.json"]}}`, 400, "SecurityOpt"},
		"env from daemon": {`{"Image": "b", "Env": ["HOME"]}`, 400, "NAME=VALUE"},
		"annotations":     {`{"Image": "b", "HostConfig": {"Annotations": {"dev.bulwark.x": "y"}}}`, 400, "HostConfig.Annotations"},
		"no image":        {`{"Cmd": ["true"]}`, 400, "Image is required"},
		"log driver":      {`{"Image": "b", "HostConfig": {"LogConfig": {"Type": "syslog"}}}`, 400, "log driver"},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := mapJSON(t, tc.body)
			if err == nil {
				_, _, err = mapCreate([]byte(tc.body), req, who, id)
			}
			if err == nil || statusOf(err) != tc.status || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (status %d), want %d with %q", err, statusOf(err), tc.status, tc.want)
			}
		})
	}
}

func TestStrictDecode(t *testing.T) {
	var v container.CreateRequest
	for body, want := range map[string]string{
		``:                          "empty",
		`{"Image": "b"} {}`:         "more than one",
		`{"Image": "b", "Nope": 1}`: `unknown field "Nope"`,
		`{"Image": `:                "malformed",
	} {
		err := strictDecode([]byte(body), &v)
		if err == nil || statusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestSplitVersion(t *testing.T) {
	for path, want := range map[string]string{
		"/v1.50/containers/json": "1.50 /containers/json", "/v1.41/_ping": "1.41 /_ping",
		"/_ping": APIVersion + " /_ping", "/v1.9/x": "error", "/v1.51/x": "error", "/v1.40/x": "error",
	} {
		v, rest, err := splitVersion(path)
		got := v + " " + rest
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
}

func TestResolvePerTenant(t *testing.T) {
	rs, err := openRecords(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer rs.close()
	a := &record{ID: "aaaa" + strings.Repeat("0", 60), Name: "web", Tenant: "alice"}
	b := &record{ID: "aaab" + strings.Repeat("0", 60), Name: "web", Tenant: "bob"}
	for _, r := range []*record{a, b} {
		if err := rs.add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.add(&record{ID: "cc", Name: "web", Tenant: "alice"}); statusOf(err) != http.StatusConflict {
		t.Errorf("a second web for alice: %v", err)
	}
	alice := config.Principal{Tenant: "alice"}
	for ref, want := range map[string]*record{"web": a, "/web": a, "aaaa": a, "aaa": a, b.ID: b} {
		got, err := rs.resolve(ref, alice)
		if err != nil || got != want {
			t.Errorf("alice resolves %q to %v, %v", ref, got, err)
		}
	}
	// bob's prefix is not alice's to find.
	if _, err := rs.resolve("aaab", alice); statusOf(err) != http.StatusNotFound {
		t.Errorf("alice resolves bob's prefix: %v", err)
	}
	// The lock keeps a second daemon out; records survive a restart.
	if _, err := openRecords(rs.dir); err == nil {
		t.Fatal("a second daemon opened the same state")
	}
	rs.close()
	rs2, err := openRecords(rs.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rs2.close()
	if got, err := rs2.resolve("web", alice); err != nil || got.ID != a.ID {
		t.Errorf("after a restart, alice's web is %v, %v", got, err)
	}
}
