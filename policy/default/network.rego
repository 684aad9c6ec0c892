# Networks and publishing (issue 11), part of the run policy: which host addresses and ports a
# tenant may publish a container's ports on. Publishing on 0.0.0.0 (every host address) or on
# a privileged host port (below 1024) is a grant the operator writes into the tenant's data:
#
#   "publish_addresses": ["127.0.0.1", "0.0.0.0"]   host addresses the tenant may publish on
#   "publish_min_port": 80                           lowest host port it may publish
#
# Defaults (data.bulwark.defaults, else below): loopback only, ports from 1024.
package bulwark.run

default publish_addresses := ["127.0.0.1"]

publish_addresses := v if {
	v := tenant_config.publish_addresses
} else := v if {
	v := defaults.publish_addresses
}

default publish_min_port := 1024

publish_min_port := v if {
	v := tenant_config.publish_min_port
} else := v if {
	v := defaults.publish_min_port
}

deny contains {"code": "PUBLISH_ADDRESS_NOT_GRANTED", "message": sprintf("publishing on host address %s is not granted to tenant %q (granted: %s)", [p.hostIP, tenant_name, concat(", ", publish_addresses)]), "path": sprintf("publish[%d].hostIP", [i])} if {
	some i, p in object.get(input, "publish", [])
	not p.hostIP in publish_addresses
}

deny contains {"code": "PUBLISH_PORT_NOT_GRANTED", "message": sprintf("publishing on host port %d is not granted to tenant %q (lowest granted: %d)", [p.hostPort, tenant_name, publish_min_port]), "path": sprintf("publish[%d].hostPort", [i])} if {
	some i, p in object.get(input, "publish", [])
	p.hostPort < publish_min_port
}

deny contains {"code": "PUBLISH_WITHOUT_NETWORK", "message": "ports are published through a network: the request attaches to none", "path": "publish"} if {
	count(object.get(input, "publish", [])) > 0
	not input.network.name
}

# Egress (issue 11): what a container may open connections to through its network, in the
# tenant's data:
#
#   "egress": "network"        the broadest mode the tenant may ask for, narrowest first:
#                              none < network (its network's containers and resolver) <
#                              allowlist (and the destinations it lists) < any
#   "egress_allow": [{"cidr": "10.1.0.0/16", "protocol": "tcp", "ports": "443"}]
#                              what an allowlist may name, with "allowlist" (protocol tcp, udp or
#                              any, the default; ports "P" or "A-B", default every port)
#
# A request that names no egress (mode "default") gets the tenant's own: its mode, or for
# "allowlist" every granted destination (constraints.egress). Default: any. Whatever the mode,
# the isolation rules keep every container away from other networks, the host's own services
# and 169.254.0.0/16.

egress_rank := {"none": 0, "network": 1, "allowlist": 2, "any": 3}

default egress_granted := "any"

egress_granted := v if {
	v := tenant_config.egress
} else := v if {
	v := defaults.egress
}

default egress_allow_granted := []

egress_allow_granted := v if {
	v := tenant_config.egress_allow
} else := v if {
	v := defaults.egress_allow
}

egress_request := object.get(input, "egress", {"mode": "default"})

deny contains {"code": "EGRESS_GRANT_INVALID", "message": sprintf("tenant %q: egress %v is not one of none, network, allowlist, any", [tenant_name, egress_granted]), "path": "egress"} if {
	input.egress
	not egress_granted in object.keys(egress_rank)
}

deny contains {"code": "EGRESS_NOT_GRANTED", "message": sprintf("egress %s is not granted to tenant %q (granted: up to %s)", [egress_request.mode, tenant_name, egress_granted]), "path": "egress.mode"} if {
	egress_request.mode != "default"
	egress_rank[egress_request.mode] > egress_rank[egress_granted]
}

deny contains {"code": "EGRESS_DESTINATION_NOT_GRANTED", "message": sprintf("egress to %s:%s:%d-%d is not granted to tenant %q (granted: %s)", [r.protocol, r.cidr, r.fromPort, r.toPort, tenant_name, concat(", ", egress_constraint)]), "path": sprintf("egress.allow[%d]", [i])} if {
	egress_granted == "allowlist"
	some i, r in object.get(egress_request, "allow", [])
	not egress_covered(r)
}

egress_covered(r) if {
	some g in egress_allow_granted
	net.cidr_contains(g.cidr, r.cidr)
	egress_protocol_covers(object.get(g, "protocol", "any"), r.protocol)
	[from, to] := egress_grant_ports(g)
	r.fromPort >= from
	r.toPort <= to
}

egress_protocol_covers("any", _)

egress_protocol_covers(p, p) if p != "any"

egress_grant_ports(g) := [1, 65535] if not g.ports

egress_grant_ports(g) := [g.ports, g.ports] if is_number(g.ports)

egress_grant_ports(g) := [to_number(g.ports), to_number(g.ports)] if {
	is_string(g.ports)
	not contains(g.ports, "-")
}

egress_grant_ports(g) := [to_number(a), to_number(b)] if {
	[a, b] := split(g.ports, "-")
}

# The egress a request naming none gets, in ParseEgress's words (engine/networks.go).
egress_constraint := [egress_granted] if egress_granted != "allowlist"

egress_constraint := ["network"] if {
	egress_granted == "allowlist"
	count(egress_allow_granted) == 0
}

egress_constraint := [egress_grant_string(g) | some g in egress_allow_granted] if {
	egress_granted == "allowlist"
	count(egress_allow_granted) > 0
}

egress_grant_string(g) := sprintf("%s:%s", [object.get(g, "protocol", "any"), g.cidr]) if not g.ports

egress_grant_string(g) := sprintf("%s:%s:%v", [object.get(g, "protocol", "any"), g.cidr, g.ports]) if g.ports
