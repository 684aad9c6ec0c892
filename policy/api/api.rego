# Bulwark's API authorization policy: every call bulwarkd serves, reads included, is decided here
# before the daemon acts. It decides one document (input, built by the daemon from the
# connection and the request, never from anything the client says about itself):
#
#   {"tenant": "alice", "operator": false, "uid": 1000, "gid": 1000,
#    "operation": "container.logs",
#    "target": {"kind": "container", "id": "…", "owner": "bob"}}   (target absent: none)
#
# and returns data.bulwark.api.decision = {"allow", "reasons": [{code, message, path}]}.
# Deny by default: allow is true only when no deny rule fires. Values tested under `not` are
# read with defaults (object.get), so an absent field never makes a deny rule undefined.
package bulwark.api

decision := {
	"allow": allow,
	"reasons": [r | some r in deny],
}

default allow := false

allow if count(deny) == 0

# The operations bulwarkd knows; anything else is refused, so a new endpoint must be named here
# before it can be reached.
operations := {
	"system.ping", "system.version", "system.info", "system.events",
	"container.create", "container.start", "container.list", "container.inspect",
	"container.logs", "container.wait", "container.attach", "container.stop",
	"container.kill", "container.remove", "container.restart", "container.exec", "container.top",
	"container.stats", "container.resize", "container.exec.inspect",
	"image.list", "image.inspect", "image.pull", "image.remove",
	"bulwark.decide", "bulwark.trust", "bulwark.audit", "bulwark.audit.verify",
	"bulwark.quotas",
	# Networks and volumes: names are per tenant; the daemon resolves them in the caller's
	# tenant only, so a target's owner is the caller's tenant or the call answers 404 first.
	"network.create", "network.list", "network.inspect", "network.remove", "network.prune",
	"network.connect", "network.disconnect",
	"volume.create", "volume.list", "volume.inspect", "volume.remove", "volume.prune",
}

# Reads every caller may make whatever its tenant: negotiating the protocol.
anonymous := {"system.ping", "system.version"}

tenant := object.get(input, "tenant", "")

operator := object.get(input, "operator", false) == true

operation := object.get(input, "operation", "")

target := object.get(input, "target", {})

owner := object.get(target, "owner", "")

default tenant_config := {}

tenant_config := data.bulwark.api_tenants[tenant]

deny contains {"code": "OPERATION_UNKNOWN", "message": sprintf("operation %q is not one bulwarkd serves", [operation]), "path": "operation"} if {
	not operation in operations
}

deny contains {"code": "TENANT_UNKNOWN", "message": "the connection's uid and gids map to no tenant in the daemon's configuration", "path": "tenant"} if {
	tenant == ""
	not operator
	not operation in anonymous
}

# Another tenant's object: only an operator reaches it (and the daemon audits that it did).
deny contains {"code": "CROSS_TENANT", "message": sprintf("%s belongs to another tenant", [concat(" ", [x | some x in [object.get(target, "kind", "object"), object.get(target, "id", "")]; x != ""])]), "path": "target.owner"} if {
	owner != ""
	owner != tenant
	not operator
}

# An operator may withhold operations from a tenant (data.bulwark.api_tenants.<t>.denied_operations).
deny contains {"code": "OPERATION_NOT_GRANTED", "message": sprintf("operation %q is not granted to tenant %q", [operation, tenant]), "path": "operation"} if {
	not operator
	operation in object.get(tenant_config, "denied_operations", [])
}
