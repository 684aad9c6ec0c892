# Bulwark's default run policy. It decides one request document (input, schema
# bulwark.dev/run/v1, built from the effective spec after the floor) and returns
# data.bulwark.run.decision = {"allow", "reasons", "constraints"}.
#
# Deny by default: allow is true only when the tenant is configured and no deny
# rule fires. The floor's tables (forbidden capabilities, the capability ceiling,
# forbidden host paths, the minimal device set) are constants here, not data, so
# tenant data can only narrow them, never widen them.
#
# Performance: every lookup of tenant data goes through
# data.bulwark.tenants[tenant_name] (a direct key lookup); no rule iterates the
# tenants, so decision latency does not grow with their number. Rules that read
# input only through input.tenant (tenant_name and the settings built on it) are
# evaluated once per tenant by the engine and reused (policy/tenantcache.go):
# keep them free of other input reads, or they are simply evaluated every time.
package bulwark.run

api_version := "bulwark.dev/run/v1"

decision := {
	"allow": allow,
	"reasons": [r | some r in deny],
	"constraints": constraints,
}

default allow := false

allow if count(deny) == 0

# ---- tenant settings: the tenant's own value, else the operator's default ----
#
# Beware Rego's negation: in `not f(x.y)` an undefined x.y makes the whole rule
# undefined (the argument is evaluated outside the negation), which would fail
# open. Every value tested under `not` is therefore read with a default
# (object.get, or a rule with a default).

default tenant_config := {}

tenant_config := data.bulwark.tenants[tenant_name]

default defaults := {}

defaults := data.bulwark.defaults

default max_memory := null

max_memory := v if {
	v := tenant_config.max_memory
} else := v if {
	v := defaults.max_memory
}

default max_pids := null

max_pids := v if {
	v := tenant_config.max_pids
} else := v if {
	v := defaults.max_pids
}

default writable_sources := []

writable_sources := v if {
	v := tenant_config.writable_bind_sources
} else := v if {
	v := defaults.writable_bind_sources
}

# Host binds are deny-by-default: a bind source must be one of the tenant's bind_sources or
# writable_bind_sources (a directory the operator lets the tenant write, it may also read), or
# below one. Both lists are empty unless the operator's data names them.
default readable_sources := []

readable_sources := v if {
	v := tenant_config.bind_sources
} else := v if {
	v := defaults.bind_sources
}

# Entries are compared with the resolved source, without a trailing slash ("/srv/x/" is "/srv/x").
bind_allowlist := {trim_right(p, "/") | some p in array.concat(readable_sources, writable_sources)}

bind_allowlist_prefixes := {concat("", [p, "/"]) | some p in bind_allowlist}

default grantable_names := []

grantable_names := v if {
	v := tenant_config.grantable_capabilities
} else := v if {
	v := defaults.grantable_capabilities
}

# A tenant's grants are cut to the ceiling: data cannot grant what the floor never does.
# (Sets and builtins rather than user functions on the common path: a function call
# costs several times a lookup in OPA's evaluator.)
#
# Complete rules (`x := {… | …}`), not partial sets (`x contains … if`): a lookup
# x[k] into a partial set re-evaluates its body for each k, a complete rule is
# evaluated once per decision and then looked up in O(1).
granted := {c | some c in grantable_names; capability_ceiling[c]}

default limit_constraints := {}

limit_constraints := {"maxMemory": max_memory, "maxPids": max_pids} if tenant_limits_valid

# "capabilities" is what the tenant is granted: the engine keeps only these of the default
# set it asks for on the caller's behalf (Docker's), dropping the rest instead of asking for
# them; a capability the caller names itself is still denied when it is not granted.
constraints := object.union(object.union(object.union(limit_constraints, network_rate_constraint), quota_constraint), {"capabilities": sort(granted), "egress": egress_constraint})

# ---- floor tables ----

# Never granted to anything (each one is a known container-escape or host-wide
# control: CVE-2022-0492 needed SYS_ADMIN for cgroup release_agent, DAC_READ_SEARCH
# gave "shocker" open_by_handle_at host file access, SYS_MODULE/SYS_RAWIO/BPF/
# PERFMON reach the kernel directly).
forbidden_capabilities := {
	"AUDIT_CONTROL", "AUDIT_READ", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE",
	"DAC_READ_SEARCH", "IPC_LOCK", "IPC_OWNER", "LEASE", "LINUX_IMMUTABLE",
	"MAC_ADMIN", "MAC_OVERRIDE", "NET_ADMIN", "NET_BROADCAST", "PERFMON",
	"SYSLOG", "SYS_ADMIN", "SYS_BOOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT",
	"SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG",
	"WAKE_ALARM",
}

# The most any tenant may be granted; tenant data selects a subset.
capability_ceiling := {
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID",
	"SYS_CHROOT",
}

# Namespaces every sandbox must have for itself.
required_namespaces := {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"}

# Host trees that are never bind-mounted, nor any directory containing them.
forbidden_host_trees := {
	"/boot", "/dev", "/etc", "/proc", "/run", "/sys", "/var/run",
	"/var/lib/bulwark", "/var/lib/containerd", "/var/lib/docker", "/var/lib/kubelet",
}

# Container runtime control sockets: access to one is root on the host.
runtime_sockets := {
	"bulwark.sock", "containerd.sock", "containerd.sock.ttrpc", "cri-dockerd.sock",
	"crio.sock", "docker.sock", "dockershim.sock", "podman.sock",
}

runtime_socket_suffixes := {concat("", ["/", s]) | some s in runtime_sockets}

allowed_mount_types := {"cgroup", "cgroup2", "devpts", "mqueue", "proc", "sysfs", "tmpfs"}

# Character devices a sandbox may have: null, zero, full, random, urandom, tty, ptmx;
# device cgroup rules may also allow the pty slaves (136:*).
minimal_devices := {"c": {1: {3, 5, 7, 8, 9}, 5: {0, 2}}}

minimal_device_rules := {"c": {1: {3, 5, 7, 8, 9}, 5: {0, 2}, 136: {-1}}}

# Sysctls that are namespaced (they cannot change the host). net.* is safe only
# because a private network namespace is required above.
namespaced_sysctl_prefixes := ["fs.mqueue.", "kernel.msg", "kernel.sem", "kernel.shm", "net."]

# ---- the deny rules ----

# Messages only use fields through object.get: a message built from an undefined
# field would make its whole deny rule undefined, which would fail open.
# (Read as input.tenant, not object.get(input, …): rules that depend on input only
# through input.tenant are evaluated once per tenant and reused by the engine.)
default tenant_name := ""

tenant_name := input.tenant

# Every rule fails closed on its own when its field is missing (the engine also
# validates documents against the schema before they get here).
deny contains {"code": "REQUEST_INVALID", "message": "input is not a request document", "path": ""} if {
	not is_object(input)
}

deny contains {"code": "REQUEST_VERSION", "message": sprintf("apiVersion %v is not %s", [object.get(input, "apiVersion", ""), api_version]), "path": "apiVersion"} if {
	not input.apiVersion == api_version
}

deny contains {"code": "TENANT_UNKNOWN", "message": sprintf("tenant %q is not configured", [tenant_name]), "path": "tenant"} if {
	not data.bulwark.tenants[tenant_name]
}

deny contains {"code": "TENANT_CONFIG_INVALID", "message": sprintf("tenant %q has no valid max_memory or max_pids (positive numbers)", [tenant_name]), "path": "tenant"} if {
	not tenant_limits_valid
}

tenant_limits_valid if {
	is_number(max_memory)
	max_memory > 0
	is_number(max_pids)
	max_pids > 0
}

operations := {"create", "run", "exec"}

deny contains {"code": "OPERATION_UNKNOWN", "message": sprintf("operation %v is not one of create, run, exec", [object.get(input, "operation", "")]), "path": "operation"} if {
	not operations[object.get(input, "operation", "")]
}

deny contains {"code": "PRIVILEGED", "message": "privileged sandboxes are never run", "path": "privileged"} if {
	input.privileged == true
}

# One pass over the required types catches both a shared and a missing one.
# Why sharing a namespace is refused, where the message alone would not say it (Docker's
# --network host, Kubernetes' hostNetwork).
namespace_why := {"network": ": the container would reach every service listening in it (the host's loopback included) and bypass its network's isolation; publish ports with -p instead"}

deny contains {"code": "NAMESPACE_SHARED", "message": sprintf("%s namespace is shared with the host or another process%s", [t, object.get(namespace_why, t, "")]), "path": concat(".", ["namespaces", t])} if {
	some t in required_namespaces
	not input.namespaces[t].shared == false
	not namespace_join_allowed(t)
}

# The pod model (the runtime's floor proves what a joined namespace is, by its identity, never
# by its path): a namespace of the sandbox's own pod sandbox, same tenant, is the pod's.
namespace_join_allowed(t) if input.namespaces[t].join == "pod"

# A network namespace the CNI caller (containerd) made for a pod — neither the host's nor any
# container's, the floor checked — is joined only from a directory the tenant's data trusts
# (trusted_netns_dirs, real paths: containerd's /run/netns, not the /var/run link).
namespace_join_allowed("network") if {
	input.namespaces.network.join == "netns"
	parts := split(object.get(input.namespaces.network, "path", ""), "/")
	dir := concat("/", array.slice(parts, 0, count(parts) - 1))
	some d in trusted_netns_dirs
	dir == trim_right(d, "/")
}

default trusted_netns_dirs := []

trusted_netns_dirs := v if {
	v := tenant_config.trusted_netns_dirs
} else := v if {
	v := defaults.trusted_netns_dirs
}

deny contains {"code": "NAMESPACE_SHARED", "message": "time namespace is shared with another process", "path": "namespaces.time"} if {
	input.namespaces.time
	not input.namespaces.time.shared == false
}

deny contains {"code": "CAP_FORBIDDEN", "message": sprintf("capability %s is never granted", [c]), "path": sprintf("capabilities[%d]", [i])} if {
	some i, c in input.capabilities
	forbidden_capabilities[c]
}

deny contains {"code": "CAP_NOT_GRANTED", "message": sprintf("capability %s is not grantable to tenant %s", [c, tenant_name]), "path": sprintf("capabilities[%d]", [i])} if {
	some i, c in input.capabilities
	not forbidden_capabilities[c]
	not granted[c]
}

deny contains {"code": "NO_NEW_PRIVS_DISABLED", "message": "noNewPrivileges must be set", "path": "process.noNewPrivileges"} if {
	not input.process.noNewPrivileges == true
}

# A writable root is a grant (writable_root_size, storage.rego).
deny contains {"code": "ROOTFS_WRITABLE", "message": sprintf("the root filesystem must be read-only: tenant %q has no writable_root_size", [tenant_name]), "path": "rootfs.readOnly"} if {
	not input.rootfs.readOnly == true
	not writable_root_granted
}

unconfined_profiles := {"", "unconfined"}

permissive_actions := {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}

deny contains {"code": "SECCOMP_UNCONFINED", "message": "seccomp must not be unconfined", "path": "seccomp.profile"} if {
	unconfined_profiles[object.get(input, ["seccomp", "profile"], "")]
}

deny contains {"code": "SECCOMP_UNCONFINED", "message": sprintf("seccomp default action %v allows every unlisted syscall", [input.seccomp.defaultAction]), "path": "seccomp.defaultAction"} if {
	permissive_actions[input.seccomp.defaultAction]
}

# ---- mounts ----

# The engine guarantees that bind and readOnly agree with type and options (it
# refuses documents where they do not), so the rules use these summaries and do
# not re-derive them on every decision.
# (A mount without the bind field is treated as a bind: fail closed.)
binds := {i | some i, m in input.mounts; not m.bind == false}

deny contains {"code": "REQUEST_INVALID", "message": "bind mount source must be an absolute path", "path": sprintf("mounts[%d].source", [i])} if {
	some i in binds
	not startswith(object.get(input.mounts[i], "source", ""), "/")
}

deny contains {"code": "MOUNT_TYPE_NOT_ALLOWED", "message": sprintf("mount type %v is not allowed", [object.get(m, "type", "")]), "path": sprintf("mounts[%d].type", [i])} if {
	some i, m in input.mounts
	m.bind == false # exactly the mounts that are not in binds
	not allowed_mount_types[object.get(m, "type", "")]
}

# The one place each kernel filesystem may appear: the masked and read-only paths are
# paths under /proc and /sys, so a second instance (proc at /mnt) would be unmasked.
kernel_fs_home := {"proc": "/proc", "sysfs": "/sys", "cgroup": "/sys/fs/cgroup", "cgroup2": "/sys/fs/cgroup"}

deny contains {"code": "MOUNT_KERNEL_FS_ELSEWHERE", "message": sprintf("a %s mount at %v is refused (only at %s, where the masks apply)", [m.type, object.get(m, "destination", ""), kernel_fs_home[m.type]]), "path": sprintf("mounts[%d].destination", [i])} if {
	some i, m in input.mounts
	m.bind == false
	kernel_fs_home[m.type]
	not object.get(m, "destination", "") == kernel_fs_home[m.type]
}

deny contains {"code": "MOUNT_HOST_PATH_FORBIDDEN", "message": forbidden_message(m.source), "path": sprintf("mounts[%d].source", [i])} if {
	some i in binds
	m := input.mounts[i]
	overlaps_forbidden(m.source)
	not tenant_volume(m.source) # the default state root is a forbidden tree
	not docker_volume(m.source) # so is dockerd's default data root
	not pod_bind(m)
}

# ---- per-pod paths of a CRI caller (containerd, kubelet) ----
#
# A tenant's pod_bind_sources lists the paths its CRI caller makes for each pod, as patterns:
# {sandbox} is the pod's sandbox container id and {pod_uid} the pod's uid — both from
# input.pod, which the runtime proved (the pod whose sandbox's namespaces the container joins,
# or the sandbox itself) — and * one path component. An entry may name the one destination it
# is mounted at and whether it may be writable. Only the pod's own paths match: another pod's
# (another sandbox id or uid) stays refused like any forbidden tree.
default pod_bind_sources := []

pod_bind_sources := v if {
	v := tenant_config.pod_bind_sources
} else := v if {
	v := defaults.pod_bind_sources
}

default pod_sandbox := ""

pod_sandbox := input.pod.sandbox

default pod_uid := ""

pod_uid := input.pod.uid

# A bind of the pod's own paths (read-only, or writable where the entry says so).
pod_bind(m) if {
	some e in pod_bind_sources
	pod_bind_entry(e, m)
	not m.readOnly == false
}

pod_bind(m) if {
	some e in pod_bind_sources
	pod_bind_entry(e, m)
	object.get(e, "writable", false) == true
}

pod_bind_entry(e, m) if {
	pod_sandbox != ""
	pattern := object.get(e, "source", "")
	not pod_uid_missing(pattern)
	glob.match(replace(replace(pattern, "{sandbox}", pod_sandbox), "{pod_uid}", pod_uid), ["/"], m.source)
	object.get(e, "destination", m.destination) == m.destination
}

pod_uid_missing(pattern) if {
	contains(pattern, "{pod_uid}")
	pod_uid == ""
}

# A Docker named volume (docker run -v NAME:/dst) is a directory of dockerd's default data root:
# when the runtime was not told that data root (or the tenant may not use Docker volumes), the
# refusal says why and what works instead.
forbidden_message(src) := msg if {
	parts := split(trim_prefix(src, "/var/lib/docker/volumes/"), "/")
	startswith(src, "/var/lib/docker/volumes/")
	count(parts) == 2
	parts[1] == "_data"
	msg := sprintf("host path %s, Docker named volume %s, may not be bind-mounted: /var/lib/docker holds every container's layers, and bulwark-runc binds a Docker volume from it only when it is told dockerd's data root (--docker-root /var/lib/docker) and the tenant's data does not say docker_volumes: false (docs/runtime.md, Docker volumes)", [src, parts[0]])
} else := sprintf("host path %s may not be bind-mounted", [src])

# The source is /, a forbidden tree, below one, or above one (a directory that
# contains a forbidden tree exposes it too).
overlaps_forbidden(src) if src == "/"

overlaps_forbidden(src) if forbidden_host_trees[src]

overlaps_forbidden(src) if strings.any_prefix_match(src, forbidden_tree_prefixes)

overlaps_forbidden(src) if strings.any_prefix_match(forbidden_host_trees, concat("", [src, "/"]))

forbidden_tree_prefixes := {concat("", [r, "/"]) | some r in forbidden_host_trees}

# The active state root (input.stateRoot, resolved like the sources) holds the audit log, the
# policy's rollback floor, id-range allocations, images and every container's state: it is
# never bound, nor anything below or above it, whatever a tenant's allowlist says.
deny contains {"code": "MOUNT_STATE_ROOT", "message": sprintf("host path %s overlaps the runtime's state root %s", [m.source, state_root]), "path": sprintf("mounts[%d].source", [i])} if {
	some i in binds
	m := input.mounts[i]
	not overlaps_forbidden(m.source)
	overlaps_state_root(m.source)
	not tenant_volume(m.source)
}

default state_root := ""

state_root := input.stateRoot

deny contains {"code": "REQUEST_INVALID", "message": "stateRoot must be an absolute path", "path": "stateRoot"} if {
	not startswith(state_root, "/")
}

# Named volumes live under the state root (<stateRoot>/volumes/<tenant>/<name>/_data). The
# tenant's own are allowed, writable too, unless its data says named_volumes: false; any other
# path under the state root (another tenant's volume included) stays MOUNT_STATE_ROOT.
default named_volumes_allowed := true

named_volumes_allowed := v if {
	v := tenant_config.named_volumes
} else := v if {
	v := defaults.named_volumes
}

volume_prefix := concat("", [trim_right(state_root, "/"), "/volumes/", tenant_name, "/"])

tenant_volume(src) if {
	named_volumes_allowed == true
	startswith(src, volume_prefix)
	parts := split(trim_prefix(src, volume_prefix), "/")
	count(parts) == 2
	regex.match(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`, parts[0])
	parts[1] == "_data"
}

# ---- Docker named volumes (bulwark-runc under dockerd) ----
#
# The runtime names the binds whose source is exactly <docker data root>/volumes/NAME/_data of
# the data root its operator gave it (bulwark-runc --docker-root), with what each holds
# (input.dockerVolumes). They are allowed, writable too, unless the tenant's data says
# docker_volumes: false; the runtime then moves a writable one into the storage range (once,
# audited as volume.adopt) so container root owns it and the host sees nothing of host root's.
# A volume that holds files not yet adopted (dockerd copied the image's content there) is
# adopted only where the data says adopt_docker_volume_contents: true: the whole tree changes
# owner, which another runtime sharing the volume would notice.
default docker_volumes_allowed := true

docker_volumes_allowed := v if {
	v := tenant_config.docker_volumes
} else := v if {
	v := defaults.docker_volumes
}

default adopt_docker_contents := false

adopt_docker_contents := v if {
	v := tenant_config.adopt_docker_volume_contents
} else := v if {
	v := defaults.adopt_docker_volume_contents
}

docker_volume_entry(src) := v if {
	some v in object.get(input, "dockerVolumes", [])
	v.source == src
	regex.match(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`, v.name)
	endswith(src, concat("", ["/volumes/", v.name, "/_data"]))
}

docker_volume(src) if {
	docker_volumes_allowed == true
	docker_volume_entry(src)
}

deny contains {"code": "DOCKER_VOLUME_NOT_EMPTY", "message": sprintf("Docker volume %s holds files owned by host ids (dockerd copied the image's content into it): adopting it would change the owner of all of them to the storage range, which tenant %s's data does not grant (adopt_docker_volume_contents: true); mount it read-only, or start from an empty volume (docker volume create, then -v NAME:/dst with an image that has nothing at /dst, or --mount type=volume,src=NAME,dst=/dst,volume-nocopy)", [v.name, tenant_name]), "path": sprintf("mounts[%d].source", [i])} if {
	some i in binds
	m := input.mounts[i]
	not m.readOnly == true
	docker_volume(m.source)
	v := docker_volume_entry(m.source)
	v.state == "filled"
	not adopt_docker_contents == true
}

# Exec on a volume: the floor keeps a writable bind executable only when its options ask for
# exec (and not noexec); that is granted on the tenant's own named volumes only, read-only or
# not, and only where its data says exec_volumes: true (default false). A writable host bind
# never gets it.
default exec_volumes_allowed := false

exec_volumes_allowed := v if {
	v := tenant_config.exec_volumes
} else := v if {
	v := defaults.exec_volumes
}

deny contains {"code": "MOUNT_EXEC_NOT_GRANTED", "message": sprintf("exec on %s at %v is not granted to tenant %s (only its own volumes, where its data says exec_volumes: true)", [m.source, object.get(m, "destination", ""), tenant_name]), "path": sprintf("mounts[%d].options", [i])} if {
	some i in binds
	m := input.mounts[i]
	opts := object.get(m, "options", [])
	"exec" in opts
	not "noexec" in opts
	exec_matters(m)
	not exec_granted(object.get(m, "source", ""))
}

exec_matters(m) if not m.readOnly == true

exec_matters(m) if tenant_volume(object.get(m, "source", ""))

exec_granted(src) if {
	exec_volumes_allowed == true
	tenant_volume(src)
}

overlaps_state_root(src) if src == state_root

overlaps_state_root(src) if startswith(src, concat("", [trim_right(state_root, "/"), "/"]))

overlaps_state_root(src) if startswith(state_root, concat("", [src, "/"]))

# Everything else must be inside the tenant's allowlist (a forbidden tree or the state root is
# reported as that instead; whether the bind may be writable is a separate rule below).
deny contains {"code": "MOUNT_HOST_PATH_NOT_ALLOWED", "message": sprintf("host path %s is not in tenant %s's bind_sources", [src, tenant_name]), "path": sprintf("mounts[%d].source", [i])} if {
	some i in binds
	src := object.get(input.mounts[i], "source", "")
	not overlaps_forbidden(src)
	not overlaps_state_root(src)
	not bind_allowed(src)
	not pod_bind(input.mounts[i])
}

bind_allowed(src) if tenant_volume(src)

bind_allowed(src) if docker_volume(src)

bind_allowed(src) if bind_allowlist[src]

bind_allowed(src) if strings.any_prefix_match(src, bind_allowlist_prefixes)

deny contains {"code": "MOUNT_RUNTIME_SOCKET", "message": sprintf("container runtime socket %s may not be mounted", [m.source]), "path": sprintf("mounts[%d].source", [i])} if {
	some i in binds
	m := input.mounts[i]
	strings.any_suffix_match(m.source, runtime_socket_suffixes)
}

deny contains {"code": "MOUNT_WRITABLE_NOT_ALLOWED", "message": sprintf("writable bind of %s is outside tenant %s's writable sources", [m.source, tenant_name]), "path": sprintf("mounts[%d].readOnly", [i])} if {
	some i in binds
	m := input.mounts[i]
	not m.readOnly == true
	not writable_allowed(object.get(m, "source", ""))
	not pod_bind(m)
}

writable_allowed(src) if src in writable_sources

writable_allowed(src) if tenant_volume(src)

writable_allowed(src) if docker_volume(src)

writable_allowed(src) if strings.any_prefix_match(src, writable_source_prefixes)

writable_source_prefixes := {concat("", [p, "/"]) | some p in writable_sources}

# ---- resources ----

deny contains {"code": "MEMORY_LIMIT_MISSING", "message": "a memory limit is required", "path": "resources.memoryLimit"} if {
	not memory_limit > 0
}

deny contains {"code": "MEMORY_LIMIT_ABOVE_MAX", "message": sprintf("memory limit %v exceeds the tenant maximum %v", [input.resources.memoryLimit, max_memory]), "path": "resources.memoryLimit"} if {
	input.resources.memoryLimit > max_memory
}

deny contains {"code": "PIDS_LIMIT_MISSING", "message": "a pids limit is required", "path": "resources.pidsLimit"} if {
	not pids_limit > 0
}

deny contains {"code": "PIDS_LIMIT_ABOVE_MAX", "message": sprintf("pids limit %v exceeds the tenant maximum %v", [input.resources.pidsLimit, max_pids]), "path": "resources.pidsLimit"} if {
	input.resources.pidsLimit > max_pids
}

default memory_limit := null

memory_limit := input.resources.memoryLimit

default pids_limit := null

pids_limit := input.resources.pidsLimit

# ---- image, devices, sysctls ----

deny contains {"code": "IMAGE_UNVERIFIED", "message": sprintf("image %v is not verified", [object.get(input.image, "reference", "")]), "path": "image.verified"} if {
	is_object(input.image)
	not input.image.verified == true
}

deny contains {"code": "DEVICE_NOT_ALLOWED", "message": sprintf("device %v (%v %v:%v) is not in the minimal set", [object.get(d, "path", "?"), object.get(d, "type", "?"), object.get(d, "major", "?"), object.get(d, "minor", "?")]), "path": sprintf("devices[%d]", [i])} if {
	some i, d in input.devices
	not minimal_devices[object.get(d, "type", "")][object.get(d, "major", "")][object.get(d, "minor", "")]
}

deny contains {"code": "DEVICE_NOT_ALLOWED", "message": sprintf("device rule %v %v:%v is not in the minimal set", [object.get(d, "type", "?"), object.get(d, "major", "?"), object.get(d, "minor", "?")]), "path": sprintf("deviceRules[%d]", [i])} if {
	some i, d in input.deviceRules
	d.allow == true
	not minimal_device_rules[object.get(d, "type", "")][object.get(d, "major", "")][object.get(d, "minor", "")]
}

deny contains {"code": "SYSCTL_NOT_ALLOWED", "message": sprintf("sysctl %s is not namespaced", [k]), "path": sprintf("sysctls[%q]", [k])} if {
	some k, _ in input.sysctls
	not strings.any_prefix_match(k, namespaced_sysctl_prefixes)
}
