package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"bulwark.dev/bulwark/network"
)

// CNICommand is bulwark-admin's hidden command that runs a network's CNI plugins for the bulwark
// CLI (network/cni.Serve): `CNICommand add|del`, the network.PluginOp as JSON on its standard
// input, ADD's network.PluginResult as JSON on its standard output.
const CNICommand = "__cni"

// ResolverCommand is bulwark-admin's hidden command that serves a network's resolver
// (network/resolver.Serve): `ResolverCommand TENANT NETWORK` with the state root of --root,
// reporting readiness on descriptor 3. The bulwark CLI's own resolver command (the one its
// engine's Config.Resolver names) executes it in its place: bulwark links no DNS message parser.
const ResolverCommand = "__resolver"

// HelperCNI runs the CNI plugins through bulwark-admin beside the running binary (the same
// owner, no one else may write it, the same build), executed through the descriptor that was
// checked, as CNI runs its plugins: a process per operation, JSON in and out. The bulwark CLI
// so links no libcni — with OpenTelemetry, net/http, crypto/tls and crypto/x509 behind it —
// for the runs that attach a network. Cancelling the context stops the operation as libcni
// would in process (the helper's own context is cancelled, and it stops the plugin).
type HelperCNI struct{}

var _ network.Plugins = HelperCNI{}

// Add implements network.Plugins.
func (HelperCNI) Add(ctx context.Context, op *network.PluginOp) (*network.PluginResult, error) {
	out, err := runCNIHelper(ctx, network.PluginAdd, op)
	if err != nil {
		return nil, err
	}
	var res network.PluginResult
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("cni add by %s: an answer that does not decode: %w", AdminName, err)
	}
	return &res, nil
}

// Del implements network.Plugins.
func (HelperCNI) Del(ctx context.Context, op *network.PluginOp) error {
	_, err := runCNIHelper(ctx, network.PluginDel, op)
	return err
}

func runCNIHelper(ctx context.Context, verb string, op *network.PluginOp) ([]byte, error) {
	in, err := json.Marshal(op)
	if err != nil {
		return nil, fmt.Errorf("cni %s: %w", verb, err)
	}
	out, _, err := runAdmin(ctx, "cni "+verb, bytes.NewReader(in), CNICommand, verb)
	return out, err
}
