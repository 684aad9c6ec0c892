package daemon

import (
	"slices"
	"strings"
	"testing"

	"bulwark.dev/bulwark/daemon/config"
)

// Networks, ports, binds, mounts and anonymous volumes map onto the engine's -p, -v and --mount.
func TestMapNetworkingAndStorage(t *testing.T) {
	who := config.Principal{UID: 1000, Tenant: "alice"}
	id := strings.Repeat("ab", 32)
	body := `{"Image": "busybox:1", "Volumes": {"/anon": {}, "/data": {}}, "ExposedPorts": {"80/tcp": {}},
	  "HostConfig": {"NetworkMode": "net1", "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": [{"HostPort": "5353"}]},
	    "PublishAllPorts": true, "Binds": ["data:/data", "/srv:/srv:ro", "vol:/v:nocopy"],
	    "Mounts": [{"Type": "bind", "Source": "/a,b", "Target": "/ab", "ReadOnly": true, "BindOptions": {"NonRecursive": true}},
	      {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 448}},
	      {"Type": "volume", "Target": "/nc", "VolumeOptions": {"NoCopy": true, "DriverConfig": {"Name": "local"}}}]},
	  "NetworkingConfig": {"EndpointsConfig": {"net1": {"Aliases": ["api"]}}}}`
	req, err := mapJSON(t, body)
	if err != nil {
		t.Fatal(err)
	}
	er, _, err := mapCreate([]byte(body), req, who, id)
	if err != nil {
		t.Fatal(err)
	}
	if er.Network != "net1" || !er.PublishAll || !slices.Equal(er.Publish, []string{"5353:53/udp", "127.0.0.1:8080:80/tcp"}) || !slices.Equal(er.NetworkAliases, []string{"api"}) {
		t.Errorf("network: %q %v %v %v", er.Network, er.PublishAll, er.Publish, er.NetworkAliases)
	}
	if !slices.Equal(er.Volumes, []string{"data:/data:rw", "/srv:/srv:ro", "vol:/v:nocopy,rw"}) {
		t.Errorf("binds: %v", er.Volumes)
	}
	want := []string{`type=bind,"source=/a,b",destination=/ab,readonly,bind-nonrecursive`,
		"type=tmpfs,destination=/t,tmpfs-size=1048576,tmpfs-mode=700", "type=volume,destination=/nc,volume-nocopy",
		"type=volume,destination=/anon"}
	if !slices.Equal(er.Mounts, want) {
		t.Errorf("mounts:\n%q\nwant\n%q", er.Mounts, want)
	}
}

// What a network or a mount here cannot be is refused with the field, never dropped.
func TestMapNetworkingAndStorageRefuses(t *testing.T) {
	who := config.Principal{UID: 1000, Tenant: "alice"}
	id := strings.Repeat("ab", 32)
	for body, want := range map[string]string{
		`{"Image": "b", "HostConfig": {"NetworkMode": "host"}}`:                                                                                             "host is refused",
		`{"Image": "b", "HostConfig": {"NetworkMode": "container:web"}}`:                                                                                    "HostConfig.NetworkMode",
		`{"Image": "b", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": ""}]}}}`:                                                                    "a host port is required",
		`{"Image": "b", "HostConfig": {"PortBindings": {"80/sctp": [{"HostPort": "80"}]}}}`:                                                                 "want tcp or udp",
		`{"Image": "b", "HostConfig": {"PortBindings": {"80-81/tcp": [{"HostPort": "80-81"}]}}}`:                                                            "invalid port",
		`{"Image": "b", "ExposedPorts": {"9/tcp": {}}, "HostConfig": {"PublishAllPorts": true}}`:                                                            "Config.ExposedPorts",
		`{"Image": "b", "HostConfig": {"NetworkMode": "n"}, "NetworkingConfig": {"EndpointsConfig": {"m": {}}}}`:                                            "one network",
		`{"Image": "b", "HostConfig": {"NetworkMode": "n"}, "NetworkingConfig": {"EndpointsConfig": {"n": {"IPAMConfig": {"IPv4Address": "10.209.0.9"}}}}}`: "IPAMConfig",
		`{"Image": "b", "HostConfig": {"NetworkMode": "n"}, "NetworkingConfig": {"EndpointsConfig": {"n": {"Aliases": ["../x"]}}}}`:                         "Aliases",
		`{"Image": "b", "HostConfig": {"Binds": ["a:b:c:d"]}}`:                                                                                              "HostConfig.Binds",
		`{"Image": "b", "HostConfig": {"Mounts": [{"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"Propagation": "rshared"}}]}}`:           "Propagation",
		`{"Image": "b", "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/b", "VolumeOptions": {"Subpath": "x"}}]}}`:                                 "Subpath",
		`{"Image": "b", "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/b", "VolumeOptions": {"Labels": {"a": "b"}}}]}}`:                           "Labels",
		`{"Image": "b", "HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/b", "TmpfsOptions": {"Options": [["exec"]]}}]}}`:                            "TmpfsOptions.Options",
		`{"Image": "b", "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/b", "Consistency": "cached"}]}}`:                                           "Consistency",
		`{"Image": "b", "HostConfig": {"VolumesFrom": ["web"]}}`:                                                                                            "HostConfig.VolumesFrom",
		`{"Image": "b", "HostConfig": {"VolumeDriver": "nfs"}}`:                                                                                             "HostConfig.VolumeDriver",
		`{"Image": "b", "HostConfig": {"Dns": ["1.1.1.1"]}}`:                                                                                                "HostConfig.Dns",
		`{"Image": "b", "HostConfig": {"ExtraHosts": ["a:1.2.3.4"]}}`:                                                                                       "HostConfig.ExtraHosts",
	} {
		req, err := mapJSON(t, body)
		if err == nil {
			_, _, err = mapCreate([]byte(body), req, who, id)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

// The Python SDK's {"NAME": null} beside EndpointsConfig asks nothing and is dropped; anything
// else there stays for the strict decoding to refuse.
func TestDropEmptyEndpoints(t *testing.T) {
	if got := string(dropEmptyEndpoints([]byte(`{"Image":"b","NetworkingConfig":{"net":null}}`))); got != `{"Image":"b","NetworkingConfig":{}}` {
		t.Errorf("null endpoint: %s", got)
	}
	for _, keep := range []string{`{"NetworkingConfig":{"net":{"Aliases":["a"]}}}`, `{"Image":"b"}`, `not json`} {
		if got := string(dropEmptyEndpoints([]byte(keep))); got != keep {
			t.Errorf("%s became %s", keep, got)
		}
	}
}
