# Unit tests for the storage decision (storage.rego; run with `bulwark policy test`).
package bulwark.storage_test

import data.bulwark.run

tenants := {
	"open": {},
	"limited": {"max_volume_size": 16, "max_volumes_size": 24, "writable_root_size": 100},
	"defaulted": {"max_volume_size": 16, "default_volume_size": 8},
	"novols": {"named_volumes": false},
	"rooted": {"max_volumes_size": 150, "writable_root_size": 100},
}

req(tenant, size, used) := {"api_version": "bulwark.dev/storage/v1", "tenant": tenant, "volume": {"name": "v", "size": size}, "volumesSize": used, "writableRoot": false}

decision(inp) := d if {
	d := run.storage_decision with input as inp with data.bulwark.tenants as tenants with data.bulwark.defaults as {}
}

codes(inp) := {r.code | some r in decision(inp).reasons}

test_unlimited_tenant if {
	d := decision(req("open", 0, 0))
	d.allow
	d.volumeSize == 0
	decision(req("open", 5, 1000)).volumeSize == 5
}

test_maximum_and_total if {
	decision(req("limited", 16, 8)).allow
	codes(req("limited", 17, 0)) == {"VOLUME_SIZE_NOT_GRANTED"}
	codes(req("limited", 10, 16)) == {"VOLUMES_TOTAL_NOT_GRANTED"}
	codes(req("limited", 0, 0)) == {"VOLUME_SIZE_REQUIRED"}
}

test_default_size if {
	d := decision(req("defaulted", 0, 0))
	d.allow
	d.volumeSize == 8
	decision(req("defaulted", 12, 0)).volumeSize == 12
}

test_refusals if {
	codes(req("novols", 0, 0)) == {"VOLUMES_NOT_GRANTED"}
	codes(req("nobody", 0, 0)) == {"TENANT_UNKNOWN"}
	codes(json.patch(req("open", 0, 0), [{"op": "replace", "path": "/api_version", "value": "x"}])) == {"REQUEST_VERSION"}
	bad := run.storage_decision with input as req("bad", 0, 0) with data.bulwark.tenants as {"bad": {"max_volume_size": "big"}}
	"STORAGE_CONFIG_INVALID" in {r.code | some r in bad.reasons}
}

# A writable root counts toward max_volumes_size with the tenant's volumes and other roots.
test_writable_root if {
	w := {"api_version": "bulwark.dev/storage/v1", "tenant": "rooted", "volumesSize": 50, "writableRoot": true}
	d := decision(w)
	d.allow
	d.writableRootSize == 100
	codes(json.patch(w, [{"op": "replace", "path": "/tenant", "value": "open"}])) == {"ROOTFS_WRITABLE"}
	codes(json.patch(w, [{"op": "replace", "path": "/volumesSize", "value": 51}])) == {"VOLUMES_TOTAL_NOT_GRANTED"}
	codes(json.patch(w, [{"op": "replace", "path": "/tenant", "value": "limited"}])) == {"VOLUMES_TOTAL_NOT_GRANTED"}
}
