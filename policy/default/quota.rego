# Quotas (issue 10), part of the run policy: how much a tenant's containers and images may hold
# together. Decided apart from runs (data.bulwark.run.quota_decision, input bulwark.dev/quota/v1:
# tenant, usage, request), by the engine under the tenant's quota lock: the policy decides the
# limits, the engine counts what the tenant holds (from the state root's records, never a counter
# file) and asks whether one more container (request) fits; without request only the limits are
# asked for (GET /bulwark/v1/quotas). Tenant data, else data.bulwark.defaults; absent or null: no
# limit.
#
#   "max_containers": 10                  containers that exist (created, running or stopped,
#                                         as docker ps -a lists them) until removed
#   "max_containers_memory": 4294967296   sum of their memory limits (bytes); a container run
#                                         without --memory counts the limit it gets (the floor's
#                                         default, 512 MiB, or the tenant's max_memory if lower)
#   "max_containers_pids": 8192           sum of their pids limits (likewise defaulted, 1024)
#   "max_containers_cpus": 4              sum of their --cpus; under it, a container must say
#                                         --cpus (QUOTA_CPUS_REQUIRED): unlimited CPU fits no sum
#   "max_images_size": 1073741824         bytes of the images charged to the tenant (pulled by it)
package bulwark.run

quota_api_version := "bulwark.dev/quota/v1"

quota_decision := {
	"allow": count(quota_deny) == 0,
	"reasons": [r | some r in quota_deny],
	"limits": quota_limits,
}

quota_setting(key) := v if {
	v := tenant_config[key]
} else := v if {
	v := defaults[key]
} else := null

default quota_limits := {"containers": null, "memory": null, "pids": null, "nanoCPUs": null, "imagesSize": null}

quota_limits := {
	"containers": quota_setting("max_containers"),
	"memory": quota_setting("max_containers_memory"),
	"pids": quota_setting("max_containers_pids"),
	"nanoCPUs": nano_cpus(quota_setting("max_containers_cpus")),
	"imagesSize": quota_setting("max_images_size"),
} if quota_config_valid

nano_cpus(v) := null if v == null

nano_cpus(v) := round(v * 1000000000) if is_number(v)

# The run decision names the tenant's quotas in its constraints ("quotas": the limits), so that a
# run decided from the decision cache knows whether it must be counted without preparing the
# policy; present whenever a quota is set, valid or not (the quota decision refuses an invalid one).
default quota_constraint := {}

quota_constraint := {"quotas": quota_limits} if {
	some k in quota_keys
	quota_setting(k) != null
}

quota_keys := ["max_containers", "max_containers_memory", "max_containers_pids", "max_containers_cpus", "max_images_size"]

quota_config_valid if {
	every k in quota_keys {
		valid_quota(quota_setting(k))
	}
}

valid_quota(v) if v == null

valid_quota(v) if {
	is_number(v)
	v >= 0
}

quota_usage := object.get(input, "usage", {})

quota_asked := object.get(input, "request", {})

quota_used(k) := object.get(quota_usage, k, 0)

quota_wants(k) := object.get(quota_asked, k, 0)

quota_deny contains {"code": "REQUEST_VERSION", "message": sprintf("api_version %v is not %s", [object.get(input, "api_version", ""), quota_api_version]), "path": "api_version"} if {
	not input.api_version == quota_api_version
}

quota_deny contains {"code": "TENANT_UNKNOWN", "message": sprintf("tenant %q is not configured", [tenant_name]), "path": "tenant"} if {
	not data.bulwark.tenants[tenant_name]
}

quota_deny contains {"code": "QUOTA_CONFIG_INVALID", "message": sprintf("tenant %q has a quota (%s) that is not a non-negative number", [tenant_name, concat(", ", quota_keys)]), "path": "tenant"} if {
	not quota_config_valid
}

# One more container: each sum it adds to must stay within its limit.
quota_deny contains {"code": "QUOTA_CONTAINERS_EXCEEDED", "message": sprintf("tenant %q has %d containers, its max_containers is %d: remove one first (docker rm)", [tenant_name, quota_used("containers"), quota_limits.containers]), "path": "usage.containers"} if {
	quota_wants("containers") > 0
	is_number(quota_limits.containers)
	quota_used("containers") + quota_wants("containers") > quota_limits.containers
}

quota_deny contains {"code": "QUOTA_MEMORY_EXCEEDED", "message": sprintf("a memory limit of %d bytes would bring tenant %q's containers to %d bytes, over its max_containers_memory of %d (give a smaller --memory, or remove a container)", [quota_wants("memory"), tenant_name, quota_used("memory") + quota_wants("memory"), quota_limits.memory]), "path": "request.memory"} if {
	quota_wants("containers") > 0
	is_number(quota_limits.memory)
	quota_used("memory") + quota_wants("memory") > quota_limits.memory
}

quota_deny contains {"code": "QUOTA_PIDS_EXCEEDED", "message": sprintf("a pids limit of %d would bring tenant %q's containers to %d, over its max_containers_pids of %d (give a smaller --pids-limit, or remove a container)", [quota_wants("pids"), tenant_name, quota_used("pids") + quota_wants("pids"), quota_limits.pids]), "path": "request.pids"} if {
	quota_wants("containers") > 0
	is_number(quota_limits.pids)
	quota_used("pids") + quota_wants("pids") > quota_limits.pids
}

quota_deny contains {"code": "QUOTA_CPUS_REQUIRED", "message": sprintf("tenant %q's CPUs are limited (max_containers_cpus): give the container --cpus", [tenant_name]), "path": "request.nanoCPUs"} if {
	quota_wants("containers") > 0
	is_number(quota_limits.nanoCPUs)
	quota_wants("nanoCPUs") <= 0
}

quota_deny contains {"code": "QUOTA_CPUS_EXCEEDED", "message": sprintf("--cpus %v would bring tenant %q's containers to %v CPUs, over its max_containers_cpus of %v", [quota_wants("nanoCPUs") / 1000000000, tenant_name, (quota_used("nanoCPUs") + quota_wants("nanoCPUs")) / 1000000000, quota_limits.nanoCPUs / 1000000000]), "path": "request.nanoCPUs"} if {
	quota_wants("containers") > 0
	is_number(quota_limits.nanoCPUs)
	quota_used("nanoCPUs") + quota_wants("nanoCPUs") > quota_limits.nanoCPUs
}

quota_deny contains {"code": "QUOTA_IMAGES_EXCEEDED", "message": sprintf("an image of %d bytes would bring tenant %q's images to %d bytes, over its max_images_size of %d (remove an image first)", [quota_wants("imagesSize"), tenant_name, quota_used("imagesSize") + quota_wants("imagesSize"), quota_limits.imagesSize]), "path": "request.imagesSize"} if {
	quota_wants("imagesSize") > 0
	is_number(quota_limits.imagesSize)
	quota_used("imagesSize") + quota_wants("imagesSize") > quota_limits.imagesSize
}
