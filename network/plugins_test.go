package network

import (
	"reflect"
	"testing"
)

// TestPluginOp: an attachment's CNI operation carries ports and limits as the plugins'
// capability arguments only when it has them, and a manager without Plugins attaches nothing.
func TestPluginOp(t *testing.T) {
	m := New(t.TempDir())
	if _, err := m.pluginOp("t", "c", "", []byte(`{}`), nil, nil); err == nil {
		t.Fatal("an operation without Plugins")
	}
	m.Plugins = nopPlugins{}
	op, err := m.pluginOp("t", "c", "/proc/9/ns/net", []byte(`{"name":"n"}`), nil, nil)
	if err != nil || op.CapabilityArgs != nil || op.NetNS != "/proc/9/ns/net" || op.IfName != ifName || op.ContainerID != "c" {
		t.Fatalf("op %+v, %v", op, err)
	}
	ports := []PortMapping{{HostPort: 80, ContainerPort: 8080, Protocol: "tcp"}}
	bw := &Bandwidth{IngressRate: 1e6}
	op, err = m.pluginOp("t", "c", "", []byte(`{"name":"n"}`), ports, bw)
	if err != nil || !reflect.DeepEqual(op.CapabilityArgs, map[string]any{"portMappings": ports, "bandwidth": bw}) {
		t.Fatalf("op %+v, %v", op, err)
	}
	if name, err := confListName([]byte(`{"name":"bulwark-t-n","plugins":[]}`)); name != "bulwark-t-n" || err != nil {
		t.Errorf("confListName: %q, %v", name, err)
	}
	for _, bad := range []string{`{}`, `[`} {
		if _, err := confListName([]byte(bad)); err == nil {
			t.Errorf("confListName(%s): no error", bad)
		}
	}
}

type nopPlugins struct{ Plugins }
