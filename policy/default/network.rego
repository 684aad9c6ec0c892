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
