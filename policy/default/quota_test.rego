# Unit tests for the quota decision (quota.rego; run with `bulwark policy test`).
package bulwark.quota_test

import data.bulwark.run

tenants := {
	"open": {},
	"ten": {"max_containers": 10},
	"sums": {"max_containers_memory": 1000, "max_containers_pids": 100, "max_containers_cpus": 1.5},
	"images": {"max_images_size": 50},
	"broken": {"max_containers": "ten"},
}

req(tenant, usage, asked) := {"api_version": "bulwark.dev/quota/v1", "tenant": tenant, "usage": usage, "request": asked}

one(mem, pids, cpus) := {"containers": 1, "memory": mem, "pids": pids, "nanoCPUs": cpus}

decision(inp) := d if {
	d := run.quota_decision with input as inp with data.bulwark.tenants as tenants with data.bulwark.defaults as {}
}

codes(inp) := {r.code | some r in decision(inp).reasons}

test_no_quota if {
	d := decision(req("open", {"containers": 1000, "memory": 1e12}, one(1e9, 1e4, 0)))
	d.allow
	d.limits == {"containers": null, "memory": null, "pids": null, "nanoCPUs": null, "imagesSize": null}
}

test_containers if {
	decision(req("ten", {"containers": 9}, one(0, 0, 0))).allow
	codes(req("ten", {"containers": 10}, one(0, 0, 0))) == {"QUOTA_CONTAINERS_EXCEEDED"}
	decision(req("ten", {"containers": 10}, one(0, 0, 0))).limits.containers == 10
}

test_limits_only if {
	# No request: the limits are answered, nothing is refused (even over quota).
	d := decision({"api_version": "bulwark.dev/quota/v1", "tenant": "ten", "usage": {"containers": 12}})
	d.allow
	d.limits.containers == 10
}

test_sums if {
	d := decision(req("sums", {"containers": 3, "memory": 600, "pids": 60, "nanoCPUs": 1000000000}, one(400, 40, 500000000)))
	d.allow
	d.limits.nanoCPUs == 1500000000
	codes(req("sums", {"memory": 601}, one(400, 1, 1))) == {"QUOTA_MEMORY_EXCEEDED"}
	codes(req("sums", {"pids": 61}, one(1, 40, 1))) == {"QUOTA_PIDS_EXCEEDED"}
	codes(req("sums", {"nanoCPUs": 1000000001}, one(1, 1, 500000000))) == {"QUOTA_CPUS_EXCEEDED"}
	codes(req("sums", {}, one(1, 1, 0))) == {"QUOTA_CPUS_REQUIRED"}
}

test_images if {
	decision(req("images", {"imagesSize": 20}, {"imagesSize": 30})).allow
	codes(req("images", {"imagesSize": 21}, {"imagesSize": 30})) == {"QUOTA_IMAGES_EXCEEDED"}
	# A container asks for no image bytes: the images' quota does not stop it.
	decision(req("images", {"imagesSize": 100}, one(1, 1, 0))).allow
}

test_fail_closed if {
	codes(req("broken", {}, one(0, 0, 0))) == {"QUOTA_CONFIG_INVALID"}
	codes(req("nobody", {}, one(0, 0, 0))) == {"TENANT_UNKNOWN"}
	codes({"tenant": "open", "request": one(0, 0, 0)}) == {"REQUEST_VERSION"}
}

# The run decision names the tenant's quotas (so a cached decision says whether to count),
# an invalid one too (the quota decision then refuses it).
test_run_constraint_names_quotas if {
	c := run.quota_constraint with input as {"tenant": "ten"} with data.bulwark.tenants as tenants with data.bulwark.defaults as {}
	c.quotas.containers == 10
	run.quota_constraint == {} with input as {"tenant": "open"} with data.bulwark.tenants as tenants with data.bulwark.defaults as {}
	b := run.quota_constraint with input as {"tenant": "broken"} with data.bulwark.tenants as tenants with data.bulwark.defaults as {}
	b.quotas.containers == null
}
