# Storage (issue 12), part of the run policy: how large a tenant's volumes may be, and whether
# it may have a writable root filesystem and how large. Decided apart from runs
# (data.bulwark.run.storage_decision, input bulwark.dev/storage/v1: tenant, volume {name, size},
# volumesSize: the tenant's volumes and writable roots so far, writableRoot), because `volume create` makes volumes without a container. The
# engine enforces the sizes with the kernel (a filesystem of that size per volume or per
# writable root: a write past it fails with ENOSPC). Tenant data, else data.bulwark.defaults:
#
#   "max_volume_size": 1073741824       largest volume (bytes); absent: no maximum
#   "max_volumes_size": 10737418240     sum of the tenant's volumes and writable roots (bytes);
#                                       absent: no maximum
#   "default_volume_size": 104857600    size of a volume made without one (bytes); absent or 0:
#                                       no limit, refused (VOLUME_SIZE_REQUIRED) under a maximum
#   "writable_root_size": 268435456     grants --read-only=false: each container's writable
#                                       layer is a filesystem of this size (bytes); absent or 0:
#                                       the root stays read-only (ROOTFS_WRITABLE)
#
# The shipped data.json gives every tenant default_volume_size 1 GiB and max_volumes_size 32 GiB
# (defaults): a tenant's data overrides them ("max_volumes_size": null and
# "default_volume_size": 0 for unlimited directory volumes).
package bulwark.run

storage_api_version := "bulwark.dev/storage/v1"

storage_decision := {
	"allow": count(storage_deny) == 0,
	"reasons": [r | some r in storage_deny],
	"volumeSize": storage_volume_size,
	"writableRootSize": writable_root_size,
}

default max_volume_size := null

max_volume_size := v if {
	v := tenant_config.max_volume_size
} else := v if {
	v := defaults.max_volume_size
}

default max_volumes_size := null

max_volumes_size := v if {
	v := tenant_config.max_volumes_size
} else := v if {
	v := defaults.max_volumes_size
}

default default_volume_size := 0

default_volume_size := v if {
	v := tenant_config.default_volume_size
} else := v if {
	v := defaults.default_volume_size
}

default writable_root_size := 0

writable_root_size := v if {
	v := tenant_config.writable_root_size
} else := v if {
	v := defaults.writable_root_size
}

asked_volume_size := object.get(object.get(input, "volume", {}), "size", 0)

default storage_volume_size := 0

storage_volume_size := asked_volume_size if {
	asked_volume_size > 0
} else := default_volume_size

volumes_limited if max_volume_size != null

volumes_limited if max_volumes_size != null

storage_deny contains {"code": "REQUEST_VERSION", "message": sprintf("api_version %v is not %s", [object.get(input, "api_version", ""), storage_api_version]), "path": "api_version"} if {
	not input.api_version == storage_api_version
}

storage_deny contains {"code": "TENANT_UNKNOWN", "message": sprintf("tenant %q is not configured", [tenant_name]), "path": "tenant"} if {
	not data.bulwark.tenants[tenant_name]
}

storage_deny contains {"code": "STORAGE_CONFIG_INVALID", "message": sprintf("tenant %q has a size limit that is not a non-negative number", [tenant_name]), "path": "tenant"} if {
	some v in [max_volume_size, max_volumes_size]
	v != null
	not valid_size(v)
}

storage_deny contains {"code": "STORAGE_CONFIG_INVALID", "message": sprintf("tenant %q has a default_volume_size or writable_root_size that is not a non-negative number", [tenant_name]), "path": "tenant"} if {
	some v in [default_volume_size, writable_root_size]
	not valid_size(v)
}

valid_size(v) if {
	is_number(v)
	v >= 0
}

storage_deny contains {"code": "VOLUMES_NOT_GRANTED", "message": sprintf("tenant %q may not have named volumes (named_volumes: false)", [tenant_name]), "path": "volume"} if {
	input.volume
	not named_volumes_allowed == true
}

storage_deny contains {"code": "VOLUME_SIZE_REQUIRED", "message": sprintf("tenant %q's volumes are limited: give a size (--opt size=…) or set default_volume_size", [tenant_name]), "path": "volume.size"} if {
	input.volume
	storage_volume_size == 0
	volumes_limited
}

storage_deny contains {"code": "VOLUME_SIZE_NOT_GRANTED", "message": sprintf("volume %s of %d bytes is larger than tenant %q's max_volume_size of %d", [input.volume.name, storage_volume_size, tenant_name, max_volume_size]), "path": "volume.size"} if {
	input.volume
	is_number(max_volume_size)
	storage_volume_size > max_volume_size
}

storage_deny contains {"code": "VOLUMES_TOTAL_NOT_GRANTED", "message": sprintf("volume %s of %d bytes would bring tenant %q's volumes and writable roots to %d bytes, over its max_volumes_size of %d", [input.volume.name, storage_volume_size, tenant_name, input.volumesSize + storage_volume_size, max_volumes_size]), "path": "volume.size"} if {
	input.volume
	is_number(max_volumes_size)
	input.volumesSize + storage_volume_size > max_volumes_size
}

storage_deny contains {"code": "ROOTFS_WRITABLE", "message": sprintf("tenant %q has no writable root (writable_root_size): write to a volume, a writable bind or a tmpfs", [tenant_name]), "path": "writableRoot"} if {
	input.writableRoot == true
	not writable_root_granted
}

storage_deny contains {"code": "VOLUMES_TOTAL_NOT_GRANTED", "message": sprintf("a writable root of %d bytes would bring tenant %q's volumes and writable roots to %d bytes, over its max_volumes_size of %d", [writable_root_size, tenant_name, input.volumesSize + writable_root_size, max_volumes_size]), "path": "writableRoot"} if {
	input.writableRoot == true
	writable_root_granted
	is_number(max_volumes_size)
	input.volumesSize + writable_root_size > max_volumes_size
}

writable_root_granted if {
	is_number(writable_root_size)
	writable_root_size > 0
}
