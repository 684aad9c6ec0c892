package engine

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestParseMount: docker's --mount syntax and defaults (a volume unless type says otherwise, an
// anonymous volume without source, a bind writable unless readonly), and every key that does
// not apply refused with its name, never ignored.
func TestParseMount(t *testing.T) {
	for in, want := range map[string]specs.Mount{
		"type=volume,src=db,dst=/var/lib/db":                       {Destination: "/var/lib/db", Type: volumeType, Source: "db", Options: []string{"rw"}},
		"source=db,target=/d,readonly":                             {Destination: "/d", Type: volumeType, Source: "db", Options: []string{"ro"}},
		"destination=/d,volume-nocopy,exec,volume-driver=local":    {Destination: "/d", Type: volumeType, Options: []string{"rw", optNoCopy, optExec}},
		"type=volume,dst=/d,ro=false,volume-nocopy=false":          {Destination: "/d", Type: volumeType, Options: []string{"rw"}},
		"type=bind,src=/srv/x,dst=/x":                              {Destination: "/x", Type: "bind", Source: "/srv/x", Options: []string{"rbind", "rw"}},
		"type=bind,src=/srv/x,dst=/x,ro=1,bind-recursive=disabled": {Destination: "/x", Type: "bind", Source: "/srv/x", Options: []string{"bind", "ro"}},
		`type=bind,"src=/srv/a,b",dst=/x,bind-nonrecursive`:        {Destination: "/x", Type: "bind", Source: "/srv/a,b", Options: []string{"bind", "rw"}},
		"type=tmpfs,dst=/cache,tmpfs-size=64m,tmpfs-mode=1770":     {Destination: "/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "size=67108864", "mode=1770"}},
		"type=tmpfs,dst=/c,readonly":                               {Destination: "/c", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "ro"}},
	} {
		got, err := parseMount(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, why := range map[string]string{
		"type=volume,src=db":                              "destination is required",
		"dst=relative":                                    "absolute",
		"src=../x,dst=/x":                                 "volume name",
		"src=a/b,dst=/x":                                  "volume name",
		"type=bind,src=rel,dst=/x":                        "absolute source",
		"type=bind,dst=/x":                                "absolute source",
		"type=tmpfs,src=x,dst=/x":                         "no source",
		"type=npipe,dst=/x":                               "want volume, bind or tmpfs",
		"type=bind,src=/a,dst=/x,volume-nocopy":           "applies to type=volume",
		"type=bind,src=/a,dst=/x,exec":                    "applies to type=volume",
		"type=volume,dst=/x,tmpfs-size=1m":                "applies to type=tmpfs",
		"type=tmpfs,dst=/x,bind-recursive=disabled":       "applies to type=bind",
		"dst=/x,volume-driver=nfs":                        "only driver",
		"dst=/x,volume-opt=size=1g":                       "not supported",
		"type=bind,src=/a,dst=/x,bind-propagation=shared": "not supported",
		"dst=/x,consistency=cached":                       "not supported",
		"dst=/x,colour=blue":                              "unknown key",
		"dst=/x,readonly=maybe":                           "true or false",
		"dst=/x,src":                                      "KEY=VALUE",
		"type=tmpfs,dst=/x,tmpfs-size=-1":                 "positive size",
		"type=tmpfs,dst=/x,tmpfs-mode=4755":               "octal",
		"type=bind,src=/a,dst=/x,bind-recursive=readonly": "enabled or disabled",
	} {
		if _, err := parseMount(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("%s: error %v, want one saying %q", in, err, why)
		}
	}
}

// TestParseVolumeModes: -v modes are a comma list; a volume takes nocopy and exec besides ro or
// rw, a host path only ro or rw; repeats and contradictions are refused.
func TestParseVolumeModes(t *testing.T) {
	for in, want := range map[string]specs.Mount{
		"db:/d":                {Destination: "/d", Type: volumeType, Source: "db", Options: []string{"rw"}},
		"db:/d:ro,nocopy,exec": {Destination: "/d", Type: volumeType, Source: "db", Options: []string{"ro", optNoCopy, optExec}},
		"/srv:/d":              {Destination: "/d", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro"}},
		"/srv:/d:rw":           {Destination: "/d", Type: "bind", Source: "/srv", Options: []string{"rbind", "rw"}},
	} {
		got, err := parseVolume(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"db:/d:ro,rw", "db:/d:nocopy,nocopy", "/srv:/d:exec", "/srv:/d:nocopy", "db:/d:z", "db:/d:"} {
		if _, err := parseVolume(in); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
	if _, err := mounts(&Request{Volumes: []string{"a:/d"}, Mounts: []string{"type=tmpfs,dst=/d/"}}); err == nil || !strings.Contains(err.Error(), "duplicate mount point /d") {
		t.Errorf("duplicate destination: %v", err)
	}
	for _, o := range []string{"exec", "suid", "dev"} {
		if _, err := mounts(&Request{Tmpfs: []string{"/t:size=1m," + o}}); err == nil || !strings.Contains(err.Error(), o+" is refused") {
			t.Errorf("--tmpfs with %s: %v", o, err)
		}
	}
}
