# OCI hooks (issue 11), part of the run policy: which host programs the runtime may run for a
# tenant's container. A hook runs on the host, as the caller (root, for containerd and Docker),
# outside every layer of the floor, so it runs only when the operator has listed the exact file:
#
#   "hook_allowlist": [{"path": "/usr/bin/dockerd", "sha256": "<hex digest of the file>"}]
#
# path is compared with the hook's resolved path (the real file the runtime opened: Docker names
# its own binary as /proc/<pid>/exe), sha256 with the digest of that file's content, which is
# what runs (the runtime executes the descriptor it hashed). Empty by default: every hook is
# refused, with its reason.
package bulwark.run

default hook_allowlist := []

hook_allowlist := v if {
	v := tenant_config.hook_allowlist
} else := v if {
	v := defaults.hook_allowlist
}

hook_allowed_paths := {e.path | some e in hook_allowlist}

deny contains {"code": "HOOK_NOT_ALLOWED", "message": sprintf("%s hook %s (%s) is not on tenant %q's hook allowlist: hooks run on the host outside the sandbox, so the operator lists each program by path and sha256 digest (hook_allowlist)", [h.phase, h.path, h.resolved, tenant_name]), "path": sprintf("hooks[%d].resolved", [i])} if {
	some i, h in object.get(input, "hooks", [])
	not hook_allowed_paths[h.resolved]
}

deny contains {"code": "HOOK_DIGEST_MISMATCH", "message": sprintf("%s hook %s: %s has sha256 %s, not the digest tenant %q's hook allowlist names for it", [h.phase, h.path, h.resolved, h.sha256, tenant_name]), "path": sprintf("hooks[%d].sha256", [i])} if {
	some i, h in object.get(input, "hooks", [])
	hook_allowed_paths[h.resolved]
	not hook_digest_listed(h)
}

hook_digest_listed(h) if {
	some e in hook_allowlist
	e.path == h.resolved
	lower(e.sha256) == h.sha256
}
