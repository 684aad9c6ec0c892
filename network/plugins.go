package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
)

// The CNI plugins are run through Plugins, not by this package: libcni links OpenTelemetry and
// through it net/http, crypto/tls and crypto/x509, which the bulwark CLI — started for every
// run, most without a network — would otherwise load at each start. package network/cni runs
// them in process (bulwarkd, bulwark-admin); engine.HelperCNI asks bulwark-admin to.

// Plugins runs the plugins of a CNI configuration list for one container: ADD and DEL.
type Plugins interface {
	Add(ctx context.Context, op *PluginOp) (*PluginResult, error)
	Del(ctx context.Context, op *PluginOp) error
}

// PluginAdd and PluginDel name the operations to a process that runs the plugins for another
// (network/cni.Serve).
const (
	PluginAdd = "add"
	PluginDel = "del"
)

// PluginOp is one ADD or DEL of a configuration list, as libcni takes it (its RuntimeConf, the
// plugin directories and the cache directory). It is JSON: a helper process receives it whole.
type PluginOp struct {
	// PluginDirs are searched for the plugins' executables.
	PluginDirs []string `json:"pluginDirs"`
	// CacheDir keeps what ADD returned, for DEL.
	CacheDir string `json:"cacheDir"`
	// ConfList is the configuration list (confList).
	ConfList json.RawMessage `json:"confList"`
	// ContainerID, NetNS (empty for a DEL whose namespace is gone) and IfName are CNI's.
	ContainerID string `json:"containerID"`
	NetNS       string `json:"netns,omitempty"`
	IfName      string `json:"ifName"`
	// CapabilityArgs are the plugins' runtimeConfig: portMappings, bandwidth.
	CapabilityArgs map[string]any `json:"capabilityArgs,omitempty"`
}

// PluginResult is what of ADD's result the manager keeps: the container's first IPv4 address
// and the interfaces the plugins report.
type PluginResult struct {
	IP         netip.Addr        `json:"ip"`
	Interfaces []PluginInterface `json:"interfaces,omitempty"`
}

// PluginInterface is one interface of a result: its name and, inside the container, the
// namespace it is in ("" on the host).
type PluginInterface struct {
	Name    string `json:"name"`
	Sandbox string `json:"sandbox,omitempty"`
}

// confListName is the name of a configuration list (its masquerade chain is derived from it).
func confListName(raw []byte) (string, error) {
	var c struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("cni config: %w", err)
	}
	if c.Name == "" {
		return "", fmt.Errorf("cni config: no name")
	}
	return c.Name, nil
}
