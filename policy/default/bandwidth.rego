# Network rate limits (issue 11, seed 8.4.5), part of the run policy: the most a tenant's
# container may send and receive through its network, in bits per second:
#
#   "max_network_rate": 100000000        100 Mbit/s each way
#
# A request above it is refused; a request that sets no limit gets the maximum (the engine
# applies constraints.maxNetworkRate to each direction it leaves unset). No maximum by default.
package bulwark.run

default max_network_rate := null

max_network_rate := v if {
	v := tenant_config.max_network_rate
} else := v if {
	v := defaults.max_network_rate
}

# The constraint the engine applies (run.rego's constraints), {} without a maximum.
default network_rate_constraint := {}

network_rate_constraint := {"maxNetworkRate": max_network_rate} if is_number(max_network_rate)

deny contains {"code": "NETWORK_RATE_ABOVE_MAX", "message": sprintf("%s rate %d bit/s is above tenant %q's maximum of %d bit/s (max_network_rate)", [dir, rate, tenant_name, max_network_rate]), "path": sprintf("bandwidth.%sRate", [dir])} if {
	is_number(max_network_rate)
	some dir in ["ingress", "egress"]
	rate := object.get(input, ["bandwidth", sprintf("%sRate", [dir])], 0)
	rate > max_network_rate
}

deny contains {"code": "TENANT_CONFIG_INVALID", "message": sprintf("tenant %q's max_network_rate must be a positive number of bits per second", [tenant_name]), "path": "tenant"} if {
	max_network_rate != null
	not valid_network_rate(max_network_rate)
}

valid_network_rate(r) if {
	is_number(r)
	r > 0
}

deny contains {"code": "NETWORK_RATE_WITHOUT_NETWORK", "message": "a network rate limits traffic through a network: the request attaches to none", "path": "bandwidth"} if {
	input.bandwidth
	not input.network.name
}
