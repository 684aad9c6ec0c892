package engine

import (
	"fmt"

	"bulwark.dev/bulwark/network"
	"bulwark.dev/bulwark/policy/document"
)

// A container's network rate limits (`--network-rate`, seed 8.4.5): policy sees what the request
// asks for and refuses a rate above the tenant's maximum; a direction the request leaves
// unlimited gets the tenant's maximum (constraints.maxNetworkRate); the network package shapes
// the traffic through CNI's bandwidth plugin.

// requestBandwidth is the request document's bandwidth: what --network-rate asks for (nil when
// it asks for nothing), refused without a network.
func requestBandwidth(networkName, rate string) (*document.Bandwidth, error) {
	bw, err := network.ParseNetworkRate(rate)
	if err != nil || bw == nil {
		return nil, err
	}
	if networkName == "" {
		return nil, fmt.Errorf("--network-rate limits traffic through a network: the request attaches to none")
	}
	return &document.Bandwidth{IngressRate: bw.IngressRate, EgressRate: bw.EgressRate}, nil
}

// decidedBandwidth is the limits an allowed request gets on its network: each direction as it
// asked, or, left unlimited, the tenant's maximum from the decision's constraints. Nil without a
// network or without any limit.
func decidedBandwidth(networkName string, asked *document.Bandwidth, c document.Constraints) (*network.Bandwidth, error) {
	if networkName == "" {
		return nil, nil
	}
	var in, eg uint64
	if asked != nil {
		in, eg = asked.IngressRate, asked.EgressRate
	}
	if m := c.MaxNetworkRate; m != nil {
		if *m <= 0 {
			return nil, fmt.Errorf("policy's constraints: maxNetworkRate %d: want a positive number of bits per second", *m)
		}
		if in == 0 {
			in = uint64(*m)
		}
		if eg == 0 {
			eg = uint64(*m)
		}
	}
	return network.NewBandwidth(in, eg)
}
