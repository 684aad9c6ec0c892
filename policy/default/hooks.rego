# OCI hooks (issue 11), part of the run policy: which host programs the runtime may run for a
# tenant's container. A hook runs on the host, as the caller (root, for containerd and Docker),
# outside every layer of the floor, so it runs only when the operator has listed the exact file:
#
#   "hook_allowlist": [{"path": "/usr/bin/dockerd", "sha256": "<hex digest of the file>",
#                       "args": ["libnetwork-setkey"]}]
#
# path is compared with the hook's resolved path (the real file the runtime opened: Docker names
# its own binary as /proc/<pid>/exe), sha256 with the digest of that file's content, which is
# what runs (the runtime executes the descriptor it hashed), and the optional args with the
# prefix the hook's arguments must start with. Empty by default: every hook is refused, with its
# reason.
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
	count(hook_digest_entries(h)) == 0
}

deny contains {"code": "HOOK_ARGS_NOT_ALLOWED", "message": sprintf("%s hook %s: arguments %v do not start as tenant %q's hook allowlist entry for %s requires", [h.phase, h.path, h.args, tenant_name, h.resolved]), "path": sprintf("hooks[%d].args", [i])} if {
	some i, h in object.get(input, "hooks", [])
	entries := hook_digest_entries(h)
	count(entries) > 0
	count({e | some e in entries; hook_args_admitted(e, h)}) == 0
}

# The allowlist entries naming h's file and digest.
hook_digest_entries(h) := {e |
	some e in hook_allowlist
	e.path == h.resolved
	lower(e.sha256) == h.sha256
}

# An entry's optional "args" is the prefix a hook's arguments must start with (argv[0] first):
# a program that does other things with other arguments (dockerd, re-executed as anything but
# libnetwork-setkey, is a daemon) is listed for the one use.
hook_args_admitted(e, h) if {
	object.get(e, "args", null) == null
}

hook_args_admitted(e, h) if {
	prefix := object.get(e, "args", null)
	is_array(prefix)
	count(h.args) >= count(prefix)
	array.slice(h.args, 0, count(prefix)) == prefix
}
