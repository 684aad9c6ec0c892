// Package cni runs a network's CNI plugins in process with libcni (network.Plugins): bulwarkd's
// way, and bulwark-admin's when it serves the bulwark CLI (Serve, engine.HelperCNI). It is apart
// from package network because libcni links OpenTelemetry and through it net/http, crypto/tls
// and crypto/x509, which the bulwark CLI, started for every run, does without.
package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"

	"bulwark.dev/bulwark/network"
)

// Plugins runs the plugins with libcni, in this process.
type Plugins struct{}

var _ network.Plugins = Plugins{}

// Add implements network.Plugins: CNI ADD of the list.
func (Plugins) Add(ctx context.Context, op *network.PluginOp) (*network.PluginResult, error) {
	c, list, rt, err := prepare(op)
	if err != nil {
		return nil, err
	}
	res, err := c.AddNetworkList(ctx, list, rt)
	if err != nil {
		return nil, err
	}
	out := &network.PluginResult{}
	// A result of another version than the plugins' own is converted; one that cannot be leaves
	// the address and the host interface unknown, as before the manager asked for them.
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return out, nil
	}
	if len(r.IPs) > 0 {
		if ip, ok := netip.AddrFromSlice(r.IPs[0].Address.IP.To4()); ok {
			out.IP = ip
		}
	}
	for _, i := range r.Interfaces {
		out.Interfaces = append(out.Interfaces, network.PluginInterface{Name: i.Name, Sandbox: i.Sandbox})
	}
	return out, nil
}

// Del implements network.Plugins: CNI DEL of the list.
func (Plugins) Del(ctx context.Context, op *network.PluginOp) error {
	c, list, rt, err := prepare(op)
	if err != nil {
		return err
	}
	return c.DelNetworkList(ctx, list, rt)
}

func prepare(op *network.PluginOp) (*libcni.CNIConfig, *libcni.NetworkConfigList, *libcni.RuntimeConf, error) {
	list, err := libcni.ConfListFromBytes(op.ConfList)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cni config: %w", err)
	}
	rt := &libcni.RuntimeConf{ContainerID: op.ContainerID, NetNS: op.NetNS, IfName: op.IfName, CapabilityArgs: op.CapabilityArgs}
	return libcni.NewCNIConfigWithCacheDir(op.PluginDirs, op.CacheDir, nil), list, rt, nil
}

// Serve runs one operation for a process that does not link libcni (engine.HelperCNI): verb
// (network.PluginAdd or network.PluginDel) of the network.PluginOp read as JSON from in; ADD's
// result is written as JSON to out.
func Serve(ctx context.Context, verb string, in io.Reader, out io.Writer) error {
	b, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("read the cni operation: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	// Numbers stay as they were written (a rate above 2^53 bit/s would not survive a float).
	dec.UseNumber()
	var op network.PluginOp
	if err := dec.Decode(&op); err != nil {
		return fmt.Errorf("decode the cni operation: %w", err)
	}
	switch verb {
	case network.PluginAdd:
		res, err := Plugins{}.Add(ctx, &op)
		if err != nil {
			return err
		}
		return json.NewEncoder(out).Encode(res)
	case network.PluginDel:
		return Plugins{}.Del(ctx, &op)
	}
	return fmt.Errorf("cni operation %q: want %s or %s", verb, network.PluginAdd, network.PluginDel)
}
