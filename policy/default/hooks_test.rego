# Unit tests for the hook allowlist (hooks.rego).
package bulwark.hooks_test

import data.bulwark.run
import data.bulwark.run_test

digest := "aa00000000000000000000000000000000000000000000000000000000000000"

setkey := {"phase": "prestart", "path": "/proc/42/exe", "resolved": "/usr/bin/dockerd", "sha256": digest, "args": ["libnetwork-setkey"]}

hooked(hs) := object.union(run_test.base, {"hooks": hs})

grants := object.union(run_test.tenants, {"acme": object.union(run_test.tenants.acme, {"hook_allowlist": [{"path": "/usr/bin/dockerd", "sha256": upper(digest)}]})})

codes(inp) := {r.code | some r in d.reasons} if {
	d := run.decision with input as inp with data.bulwark.tenants as grants
}

test_allowlisted_hook_allowed if {
	codes(hooked([setkey])) == set()
}

test_unlisted_hook_denied if {
	codes(hooked([object.union(setkey, {"resolved": "/tmp/x"})])) == {"HOOK_NOT_ALLOWED"}
}

test_digest_mismatch_denied if {
	codes(hooked([object.union(setkey, {"sha256": concat("", ["bb", substring(digest, 2, 62)])})])) == {"HOOK_DIGEST_MISMATCH"}
}

test_no_allowlist_denies_every_hook if {
	d := run.decision with input as hooked([setkey]) with data.bulwark.tenants as run_test.tenants
	{r.code | some r in d.reasons} == {"HOOK_NOT_ALLOWED"}
}

test_no_hooks_no_reason if {
	codes(run_test.base) == set()
}

test_args_prefix if {
	pinned := object.union(run_test.tenants, {"acme": object.union(run_test.tenants.acme, {"hook_allowlist": [{"path": "/usr/bin/dockerd", "sha256": digest, "args": ["libnetwork-setkey"]}]})})
	d := run.decision with input as hooked([setkey]) with data.bulwark.tenants as pinned
	d.allow
	d2 := run.decision with input as hooked([object.union(setkey, {"args": ["dockerd", "--host", "tcp://0.0.0.0:2375"]})]) with data.bulwark.tenants as pinned
	{r.code | some r in d2.reasons} == {"HOOK_ARGS_NOT_ALLOWED"}
	d3 := run.decision with input as hooked([object.union(setkey, {"args": []})]) with data.bulwark.tenants as pinned
	{r.code | some r in d3.reasons} == {"HOOK_ARGS_NOT_ALLOWED"}
}
