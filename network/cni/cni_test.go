package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bulwark.dev/bulwark/network"
)

// fakePlugin is a CNI plugin that keeps its configuration and environment in dir and answers
// ADD with a bridge, a host veth and the container's interface with 10.209.3.7.
const fakePlugin = `#!/bin/sh
cat > "$(dirname "$0")/$CNI_COMMAND.conf"
env | grep ^CNI_ | sort > "$(dirname "$0")/$CNI_COMMAND.env"
[ "$CNI_COMMAND" = ADD ] && echo '{"cniVersion":"1.0.0","interfaces":[{"name":"bwbridge"},{"name":"veth1234"},{"name":"eth0","sandbox":"/proc/1/ns/net"}],"ips":[{"address":"10.209.3.7/24","gateway":"10.209.3.1","interface":2}]}'
exit 0
`

// TestServe: an operation encoded as the bulwark CLI's HelperCNI encodes it reaches the plugin
// whole through Serve — its capability arguments (a rate above 2^53 bit/s among them) in the
// plugin's runtimeConfig, the container, namespace and interface in its CNI_ variables — and
// ADD's result comes back as the manager reads it.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "fake"), []byte(fakePlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := `{"cniVersion":"1.0.0","name":"bulwark-t-n","plugins":[{"type":"fake","capabilities":{"portMappings":true,"bandwidth":true}}]}`
	op := &network.PluginOp{
		PluginDirs: []string{dir}, CacheDir: filepath.Join(dir, "cache"), ConfList: json.RawMessage(conf),
		ContainerID: "c1", NetNS: "/proc/1/ns/net", IfName: "eth0",
		CapabilityArgs: map[string]any{
			"portMappings": []network.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}},
			"bandwidth":    &network.Bandwidth{IngressRate: 1<<53 + 1},
		},
	}
	in, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Serve(context.Background(), network.PluginAdd, bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var res network.PluginResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("result %q: %v", out.String(), err)
	}
	want := network.PluginResult{IP: netip.MustParseAddr("10.209.3.7"), Interfaces: []network.PluginInterface{
		{Name: "bwbridge"}, {Name: "veth1234"}, {Name: "eth0", Sandbox: "/proc/1/ns/net"}}}
	if got, _ := json.Marshal(res); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("result %s, want %s", got, must(json.Marshal(want)))
	}
	var sent struct {
		RuntimeConfig struct {
			PortMappings []network.PortMapping `json:"portMappings"`
			Bandwidth    json.RawMessage       `json:"bandwidth"`
		} `json:"runtimeConfig"`
	}
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(dir, "ADD.conf"))), &sent); err != nil {
		t.Fatal(err)
	}
	if len(sent.RuntimeConfig.PortMappings) != 1 || sent.RuntimeConfig.PortMappings[0] != (network.PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}) {
		t.Errorf("plugin's port mappings: %+v", sent.RuntimeConfig.PortMappings)
	}
	if b := string(sent.RuntimeConfig.Bandwidth); b != `{"ingressRate":9007199254740993}` {
		t.Errorf("plugin's bandwidth: %s", b)
	}
	env := string(must(os.ReadFile(filepath.Join(dir, "ADD.env"))))
	for _, v := range []string{"CNI_CONTAINERID=c1", "CNI_NETNS=/proc/1/ns/net", "CNI_IFNAME=eth0"} {
		if !strings.Contains(env, v+"\n") {
			t.Errorf("plugin's environment lacks %s:\n%s", v, env)
		}
	}

	// DEL without a namespace: the plugin runs, nothing is answered.
	op.NetNS, op.CapabilityArgs = "", nil
	out.Reset()
	if err := Serve(context.Background(), network.PluginDel, bytes.NewReader(must(json.Marshal(op))), &out); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("DEL answered %q", out.String())
	}
	if env := string(must(os.ReadFile(filepath.Join(dir, "DEL.env")))); !strings.Contains(env, "CNI_CONTAINERID=c1\n") {
		t.Errorf("DEL's environment: %s", env)
	}
}

// TestServeRefuses: an unknown verb, an unknown field and a configuration libcni refuses are
// errors, the plugin never run.
func TestServeRefuses(t *testing.T) {
	for name, c := range map[string]struct{ verb, in string }{
		"verb":     {"check", `{"confList":{}}`},
		"field":    {network.PluginAdd, `{"confList":{},"extra":1}`},
		"conflist": {network.PluginAdd, `{"confList":{"cniVersion":"1.0.0"},"containerID":"c","ifName":"eth0"}`},
	} {
		if err := Serve(context.Background(), c.verb, strings.NewReader(c.in), &bytes.Buffer{}); err == nil {
			t.Errorf("%s: served", name)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
