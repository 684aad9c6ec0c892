# Unit tests for the default run policy (run with `bulwark policy test`).
package bulwark.run_test

import data.bulwark.run

base := {
	"apiVersion": "bulwark.dev/run/v1",
	"tenant": "acme",
	"identity": {"uid": 1000, "gid": 1000},
	"operation": "create",
	"stateRoot": "/var/lib/bulwark",
	"privileged": false,
	"process": {"args": ["/bin/true"], "user": {"uid": 0, "gid": 0}, "cwd": "/", "env": ["PATH"], "terminal": false, "noNewPrivileges": true},
	"capabilities": ["CHOWN", "KILL"],
	"mounts": [
		{"type": "proc", "source": "proc", "destination": "/proc", "options": ["nosuid"], "readOnly": false, "bind": false},
		{"type": "bind", "source": "/srv/data", "destination": "/data", "options": ["rbind", "ro"], "readOnly": true, "bind": true},
	],
	"namespaces": {t: {"shared": false} | some t in run.required_namespaces},
	"network": {"mode": "private"},
	"seccomp": {"profile": "default", "digest": "sha256:00", "defaultAction": "SCMP_ACT_ERRNO"},
	"mac": {"layer": "landlock"},
	"rootfs": {"readOnly": true},
	"resources": {"memoryLimit": 268435456, "pidsLimit": 128},
	"devices": [],
	"deviceRules": [{"allow": false, "type": "a", "major": -1, "minor": -1, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
	"sysctls": {"net.ipv4.ping_group_range": "0 0"},
	"rlimits": [],
	"annotations": {},
	"raises": [],
}

tenants := {"acme": {"max_memory": 1073741824, "bind_sources": ["/srv/data", "/home/u"], "writable_bind_sources": ["/srv/acme"]}, "tight": {"grantable_capabilities": ["CHOWN"], "max_pids": 64, "bind_sources": ["/srv/data"]}}

codes(inp) := {r.code | some r in d.reasons} if {
	d := run.decision with input as inp with data.bulwark.tenants as tenants
}

test_baseline_allowed if {
	d := run.decision with input as base with data.bulwark.tenants as tenants
	d.allow
	d.reasons == []
	d.constraints == {"maxMemory": 1073741824, "maxPids": 4096, "capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETGID", "SETUID"], "egress": ["any"]}
}

test_constraints_name_the_tenants_grants if {
	d := run.decision with input as json.patch(base, [{"op": "replace", "path": "/tenant", "value": "tight"}]) with data.bulwark.tenants as tenants
	d.constraints.capabilities == ["CHOWN"]
}

test_cap_forbidden_reason_shape if {
	inp := json.patch(base, [{"op": "add", "path": "/capabilities/-", "value": "SYS_ADMIN"}])
	d := run.decision with input as inp with data.bulwark.tenants as tenants
	not d.allow
	d.reasons == [{"code": "CAP_FORBIDDEN", "message": "capability SYS_ADMIN is never granted", "path": "capabilities[2]"}]
}

test_cap_not_granted_for_tight_tenant if {
	codes(json.patch(base, [{"op": "replace", "path": "/tenant", "value": "tight"}])) == {"CAP_NOT_GRANTED", "PIDS_LIMIT_ABOVE_MAX"}
}

test_tenant_cannot_widen_ceiling if {
	t := {"acme": {"grantable_capabilities": ["SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN"], "bind_sources": ["/srv/data"]}}
	inp := json.patch(base, [{"op": "replace", "path": "/capabilities", "value": ["SYS_PTRACE"]}])
	d := run.decision with input as inp with data.bulwark.tenants as t
	not d.allow
	{r.code | some r in d.reasons} == {"CAP_FORBIDDEN"}
}

test_unknown_tenant_denied if {
	"TENANT_UNKNOWN" in codes(json.patch(base, [{"op": "replace", "path": "/tenant", "value": "nobody"}]))
}

test_tenant_without_limits_fails_closed if {
	t := {"acme": {}}
	d := run.decision with input as base with data.bulwark.tenants as t with data.bulwark.defaults as {}
	not d.allow
	"TENANT_CONFIG_INVALID" in {r.code | some r in d.reasons}
}

test_missing_nested_fields_fail_closed if {
	"NO_NEW_PRIVS_DISABLED" in codes(json.remove(base, ["/process/noNewPrivileges"]))
	"ROOTFS_WRITABLE" in codes(json.remove(base, ["/rootfs/readOnly"]))
	"SECCOMP_UNCONFINED" in codes(json.remove(base, ["/seccomp/profile"]))
	"IMAGE_UNVERIFIED" in codes(json.patch(base, [{"op": "add", "path": "/image", "value": {"reference": "r/x:1"}}]))
	"REQUEST_INVALID" in codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": {"source": "x", "destination": "/x", "options": []}}]))
	"DEVICE_NOT_ALLOWED" in codes(json.patch(base, [{"op": "add", "path": "/devices/-", "value": {"path": "/dev/sda"}}]))
	"DEVICE_NOT_ALLOWED" in codes(json.patch(base, [{"op": "add", "path": "/deviceRules/-", "value": {"allow": true}}]))
	"MEMORY_LIMIT_MISSING" in codes(json.remove(base, ["/resources"]))
	"TENANT_UNKNOWN" in codes(json.remove(base, ["/tenant"]))
	"OPERATION_UNKNOWN" in codes(json.remove(base, ["/operation"]))
	"REQUEST_VERSION" in codes(json.remove(base, ["/apiVersion"]))
}

test_non_object_input_denied if {
	"REQUEST_INVALID" in codes(["not", "a", "document"])
}

test_empty_input_denied if {
	codes({}) == {"REQUEST_INVALID", "REQUEST_VERSION", "TENANT_UNKNOWN", "OPERATION_UNKNOWN", "NAMESPACE_SHARED", "NO_NEW_PRIVS_DISABLED", "ROOTFS_WRITABLE", "SECCOMP_UNCONFINED", "MEMORY_LIMIT_MISSING", "PIDS_LIMIT_MISSING"}
	d := run.decision with input as {} with data.bulwark.tenants as tenants
	not d.allow
}

test_privileged_denied if {
	codes(json.patch(base, [{"op": "replace", "path": "/privileged", "value": true}])) == {"PRIVILEGED"}
}

test_host_network_namespace_denied_with_why if {
	d := run.decision with input as json.patch(base, [{"op": "replace", "path": "/namespaces/network", "value": {"shared": true, "path": "/var/run/docker/netns/default"}}])
		with data.bulwark.tenants as tenants
	[r] := d.reasons
	r.code == "NAMESPACE_SHARED"
	contains(r.message, "network namespace is shared with the host or another process: the container would reach every service listening in it")
}

test_host_pid_namespace_denied if {
	d := run.decision with input as json.patch(base, [{"op": "replace", "path": "/namespaces/pid", "value": {"shared": true, "path": "/proc/1/ns/pid"}}])
		with data.bulwark.tenants as tenants
	d.reasons == [{"code": "NAMESPACE_SHARED", "message": "pid namespace is shared with the host or another process", "path": "namespaces.pid"}]
	codes(json.patch(base, [{"op": "add", "path": "/namespaces/time", "value": {"shared": true, "path": "/proc/1/ns/time"}}])) == {"NAMESPACE_SHARED"}
	codes(json.patch(base, [{"op": "add", "path": "/namespaces/time", "value": {"shared": false}}])) == set()
}

test_missing_namespace_denied if {
	codes(json.remove(base, ["/namespaces/user"])) == {"NAMESPACE_SHARED"}
	codes(json.remove(base, ["/namespaces"])) == {"NAMESPACE_SHARED"}
	codes(json.patch(base, [{"op": "replace", "path": "/namespaces/ipc", "value": {}}])) == {"NAMESPACE_SHARED"}
}

bind(src, opts) := {"type": "bind", "source": src, "destination": "/x", "options": opts, "readOnly": "ro" in opts, "bind": true}

test_forbidden_host_paths if {
	every src in ["/", "/etc", "/etc/shadow", "/proc/1", "/sys", "/dev/sda", "/boot", "/var/run", "/run/containerd", "/var", "/var/lib/docker/overlay2"] {
		codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind(src, ["rbind", "ro"])}])) == {"MOUNT_HOST_PATH_FORBIDDEN"}
	}
}

# A Docker named volume the runtime did not name (no --docker-root) is refused (dockerd's data
# root is a forbidden tree) naming the remedy.
test_docker_named_volume_refusal_names_remedy if {
	d := run.decision with input as json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/var/lib/docker/volumes/pgdata/_data", ["rbind", "rw"])}]) with data.bulwark.tenants as tenants
	some r in d.reasons
	r.code == "MOUNT_HOST_PATH_FORBIDDEN"
	contains(r.message, "Docker named volume pgdata, may not be bind-mounted")
	contains(r.message, "--docker-root /var/lib/docker")
	d2 := run.decision with input as json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/var/lib/docker/volumes/pgdata", ["rbind", "ro"])}]) with data.bulwark.tenants as tenants
	d2.reasons[0].message == "host path /var/lib/docker/volumes/pgdata may not be bind-mounted"
}

# A Docker named volume the runtime names (input.dockerVolumes) is allowed writable, empty or
# adopted; a filled one only read-only unless adopt_docker_volume_contents; docker_volumes:
# false refuses it; an entry whose source is not <root>/volumes/NAME/_data is no volume.
docker_vol(src, name, state, ro) := json.patch(base, [
	{"op": "add", "path": "/mounts/-", "value": json.patch(bind(src, ["rbind"]), [{"op": "replace", "path": "/readOnly", "value": ro}])},
	{"op": "add", "path": "/dockerVolumes", "value": [{"source": src, "name": name, "state": state}]},
])

test_docker_volumes if {
	src := "/var/lib/docker/volumes/pgdata/_data"
	every state in ["empty", "adopted"] {
		d := run.decision with input as docker_vol(src, "pgdata", state, false) with data.bulwark.tenants as tenants
		d.allow
	}
	other := "/srv/docker/volumes/pg/_data"
	d1 := run.decision with input as docker_vol(other, "pg", "empty", false) with data.bulwark.tenants as tenants
	d1.allow
	codes(docker_vol(src, "pgdata", "filled", false)) == {"DOCKER_VOLUME_NOT_EMPTY"}
	d2 := run.decision with input as docker_vol(src, "pgdata", "filled", true) with data.bulwark.tenants as tenants
	d2.allow
	d3 := run.decision with input as docker_vol(src, "pgdata", "filled", false) with data.bulwark.tenants as {"acme": object.union(tenants.acme, {"adopt_docker_volume_contents": true})}
	d3.allow
	d4 := run.decision with input as docker_vol(src, "pgdata", "empty", false) with data.bulwark.tenants as {"acme": object.union(tenants.acme, {"docker_volumes": false})}
	{r.code | some r in d4.reasons} == {"MOUNT_HOST_PATH_FORBIDDEN", "MOUNT_WRITABLE_NOT_ALLOWED"}
	codes(docker_vol("/var/lib/docker/volumes/pgdata/_data/x", "pgdata", "empty", false)) == {"MOUNT_HOST_PATH_FORBIDDEN", "MOUNT_WRITABLE_NOT_ALLOWED"}
	codes(docker_vol("/srv/docker/volumes/pg/_data", "other", "empty", false)) == {"MOUNT_HOST_PATH_NOT_ALLOWED", "MOUNT_WRITABLE_NOT_ALLOWED"}
}

test_runtime_socket_denied if {
	"MOUNT_RUNTIME_SOCKET" in codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/home/u/docker.sock", ["bind", "ro"])}]))
}

# A mount without the bind/readOnly summaries is judged as a writable bind.
test_mount_without_summary_fields_fails_closed if {
	m := {"type": "bind", "source": "/srv/other", "destination": "/x", "options": ["rbind"]}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": m}])) == {"MOUNT_HOST_PATH_NOT_ALLOWED", "MOUNT_WRITABLE_NOT_ALLOWED"}
	p := {"type": "proc", "source": "proc", "destination": "/proc", "options": []}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": p}])) == {"REQUEST_INVALID", "MOUNT_HOST_PATH_NOT_ALLOWED", "MOUNT_WRITABLE_NOT_ALLOWED"}
}

test_writable_bind_outside_allowlist_denied if {
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/srv/other", ["rbind"])}])) == {"MOUNT_HOST_PATH_NOT_ALLOWED", "MOUNT_WRITABLE_NOT_ALLOWED"}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/srv/data/sub", ["rbind"])}])) == {"MOUNT_WRITABLE_NOT_ALLOWED"}
}

test_writable_bind_inside_allowlist_allowed if {
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/srv/acme/cache", ["rbind", "rw"])}])) == set()
}

test_writable_bind_prefix_is_not_a_parent if {
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/srv/acme-evil", ["rbind"])}])) == {"MOUNT_HOST_PATH_NOT_ALLOWED", "MOUNT_WRITABLE_NOT_ALLOWED"}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": bind("/srv/data-evil", ["rbind", "ro"])}])) == {"MOUNT_HOST_PATH_NOT_ALLOWED"}
}

# Host binds are deny-by-default: a tenant without bind_sources may bind nothing, and the
# shipped defaults name none.
test_binds_denied_without_allowlist if {
	every src in ["/var/log", "/home", "/home/u/project", "/root", "/srv/data", "/tmp", "/opt", "/mnt/usb"] {
		inp := json.patch(base, [{"op": "replace", "path": "/mounts/1/source", "value": src}])
		d := run.decision with input as inp with data.bulwark.tenants as {"acme": {}}
		{r.code | some r in d.reasons} == {"MOUNT_HOST_PATH_NOT_ALLOWED"}
		d.reasons[0].message == sprintf("host path %s is not in tenant acme's bind_sources", [src])
		d.reasons[0].path == "mounts[1].source"
	}
}

test_binds_inside_allowlist_allowed if {
	every src in ["/srv/data", "/srv/data/x/y", "/home/u"] {
		codes(json.patch(base, [{"op": "replace", "path": "/mounts/1/source", "value": src}])) == set()
	}
	t := {"acme": {"bind_sources": ["/srv/data/"]}} # a trailing slash names the same directory
	inp := json.patch(base, [{"op": "replace", "path": "/mounts/1/source", "value": "/srv/data/x"}])
	d := run.decision with input as inp with data.bulwark.tenants as t
	d.allow
}

# The operator's defaults apply to tenants that name no list of their own.
test_bind_allowlist_from_defaults if {
	inp := json.patch(base, [{"op": "replace", "path": "/tenant", "value": "default"}])
	d := run.decision with input as inp with data.bulwark.tenants as {"default": {}} with data.bulwark.defaults.bind_sources as ["/srv"]
	d.allow
	d2 := run.decision with input as inp with data.bulwark.tenants as {"default": {}}
	{r.code | some r in d2.reasons} == {"MOUNT_HOST_PATH_NOT_ALLOWED"}
}

# The state root is never bound — not the default one, not one elsewhere, nothing below or
# above it — even when the tenant's allowlist covers it.
test_state_root_never_bound if {
	t := {"acme": {"bind_sources": ["/srv"], "writable_bind_sources": ["/srv"]}}
	every src in ["/srv/state", "/srv/state/audit", "/srv/state/containers/c1/rootfs", "/srv"] {
		inp := json.patch(base, [
			{"op": "replace", "path": "/stateRoot", "value": "/srv/state"},
			{"op": "replace", "path": "/mounts/1/source", "value": src},
		])
		d := run.decision with input as inp with data.bulwark.tenants as t
		{r.code | some r in d.reasons} == {"MOUNT_STATE_ROOT"}
		d.reasons[0].message == sprintf("host path %s overlaps the runtime's state root /srv/state", [src])
	}
	# A sibling with the same prefix is not the state root.
	inp := json.patch(base, [{"op": "replace", "path": "/stateRoot", "value": "/srv/state"}, {"op": "replace", "path": "/mounts/1/source", "value": "/srv/state2"}])
	d := run.decision with input as inp with data.bulwark.tenants as t
	d.allow
	# The default state root is a forbidden tree as well: one reason.
	codes(json.patch(base, [{"op": "replace", "path": "/mounts/1/source", "value": "/var/lib/bulwark/audit"}])) == {"MOUNT_HOST_PATH_FORBIDDEN"}
}

rw(src, root) := json.patch(base, [
	{"op": "replace", "path": "/stateRoot", "value": root},
	{"op": "replace", "path": "/mounts/1/source", "value": src},
	{"op": "replace", "path": "/mounts/1/readOnly", "value": false},
])

# A tenant's own named volumes (<stateRoot>/volumes/<tenant>/<name>/_data) are allowed, writable
# too, under any state root; another tenant's, or anything else under volumes/, is the state
# root's; named_volumes: false in the tenant's data refuses them.
test_tenant_volumes if {
	t := {"acme": {}, "other": {}}
	every root in ["/srv/state", "/var/lib/bulwark"] {
		d := run.decision with input as rw(concat("", [root, "/volumes/acme/db/_data"]), root) with data.bulwark.tenants as t
		d.allow
	}
	every src in ["/srv/state/volumes/other/db/_data", "/srv/state/volumes/acme/db", "/srv/state/volumes/acme/db/_data/x", "/srv/state/volumes/acme/../other/db/_data"] {
		d := run.decision with input as rw(src, "/srv/state") with data.bulwark.tenants as t
		not d.allow
		"MOUNT_STATE_ROOT" in {r.code | some r in d.reasons}
	}
	d := run.decision with input as rw("/srv/state/volumes/acme/db/_data", "/srv/state") with data.bulwark.tenants as {"acme": {"named_volumes": false}}
	not d.allow
}

# Exec on a volume (options exec, no noexec) only on the tenant's own volumes, read-only or not,
# and only where its data says exec_volumes: true; never on a writable host bind. A read-only
# host bind is executable as before.
with_opts(inp, opts) := json.patch(inp, [{"op": "replace", "path": "/mounts/1/options", "value": opts}])

test_exec_volumes if {
	vol := with_opts(rw("/srv/state/volumes/acme/db/_data", "/srv/state"), ["bind", "nosuid", "nodev", "idmap", "exec"])
	d := run.decision with input as vol with data.bulwark.tenants as {"acme": {}}
	{r.code | some r in d.reasons} == {"MOUNT_EXEC_NOT_GRANTED"}
	ro := json.patch(vol, [{"op": "replace", "path": "/mounts/1/readOnly", "value": true}])
	d2 := run.decision with input as ro with data.bulwark.tenants as {"acme": {}}
	{r.code | some r in d2.reasons} == {"MOUNT_EXEC_NOT_GRANTED"}
	every inp in [vol, ro] {
		d3 := run.decision with input as inp with data.bulwark.tenants as {"acme": {"exec_volumes": true}}
		d3.allow
	}
	d4 := run.decision with input as with_opts(vol, ["bind", "noexec", "exec"]) with data.bulwark.tenants as {"acme": {}}
	d4.allow
	host := with_opts(rw("/srv/acme", "/srv/state"), ["rbind", "nosuid", "nodev", "idmap", "exec"])
	d5 := run.decision with input as host with data.bulwark.tenants as {"acme": {"writable_bind_sources": ["/srv/acme"], "exec_volumes": true}}
	{r.code | some r in d5.reasons} == {"MOUNT_EXEC_NOT_GRANTED"}
}

test_state_root_required if {
	codes(json.remove(base, ["/stateRoot"])) == {"REQUEST_INVALID", "MOUNT_STATE_ROOT"}
	codes(json.patch(base, [{"op": "replace", "path": "/stateRoot", "value": "state"}])) == {"REQUEST_INVALID"}
}

test_mount_type_not_allowed if {
	m := {"type": "overlay", "source": "overlay", "destination": "/x", "options": ["lowerdir=/etc"], "readOnly": false, "bind": false}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": m}])) == {"MOUNT_TYPE_NOT_ALLOWED"}
}

test_kernel_fs_only_at_home if {
	p := {"type": "proc", "source": "proc", "destination": "/mnt", "options": [], "readOnly": false, "bind": false}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": p}])) == {"MOUNT_KERNEL_FS_ELSEWHERE"}
	s := {"type": "sysfs", "source": "sysfs", "destination": "/mnt", "options": ["ro"], "readOnly": true, "bind": false}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": s}])) == {"MOUNT_KERNEL_FS_ELSEWHERE"}
	c := {"type": "cgroup2", "source": "cgroup", "destination": "/sys/fs/cgroup/x", "options": ["ro"], "readOnly": true, "bind": false}
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": c}])) == {"MOUNT_KERNEL_FS_ELSEWHERE"}
	home := [
		{"type": "sysfs", "source": "sysfs", "destination": "/sys", "options": ["ro"], "readOnly": true, "bind": false},
		{"type": "cgroup", "source": "cgroup", "destination": "/sys/fs/cgroup", "options": ["ro"], "readOnly": true, "bind": false},
	]
	codes(json.patch(base, [{"op": "add", "path": "/mounts/-", "value": m} | some m in home])) == set()
}

test_seccomp_unconfined_denied if {
	codes(json.patch(base, [{"op": "replace", "path": "/seccomp", "value": {"profile": "unconfined", "digest": "", "defaultAction": ""}}])) == {"SECCOMP_UNCONFINED"}
	codes(json.patch(base, [{"op": "replace", "path": "/seccomp/defaultAction", "value": "SCMP_ACT_ALLOW"}])) == {"SECCOMP_UNCONFINED"}
}

test_limits if {
	codes(json.remove(base, ["/resources/memoryLimit"])) == {"MEMORY_LIMIT_MISSING"}
	codes(json.patch(base, [{"op": "replace", "path": "/resources/memoryLimit", "value": -1}])) == {"MEMORY_LIMIT_MISSING"}
	codes(json.patch(base, [{"op": "replace", "path": "/resources/memoryLimit", "value": 2147483648}])) == {"MEMORY_LIMIT_ABOVE_MAX"}
	codes(json.remove(base, ["/resources/pidsLimit"])) == {"PIDS_LIMIT_MISSING"}
	codes(json.patch(base, [{"op": "replace", "path": "/tenant", "value": "tight"}, {"op": "replace", "path": "/capabilities", "value": []}])) == {"PIDS_LIMIT_ABOVE_MAX"}
}

test_image_unverified_denied if {
	codes(json.patch(base, [{"op": "add", "path": "/image", "value": {"reference": "r/x:1", "digest": "sha256:ab", "verified": false}}])) == {"IMAGE_UNVERIFIED"}
	codes(json.patch(base, [{"op": "add", "path": "/image", "value": {"reference": "r/x:1", "digest": "sha256:ab", "verified": true}}])) == set()
}

test_devices if {
	codes(json.patch(base, [{"op": "add", "path": "/devices/-", "value": {"type": "b", "path": "/dev/sda", "major": 8, "minor": 0}}])) == {"DEVICE_NOT_ALLOWED"}
	codes(json.patch(base, [{"op": "add", "path": "/devices/-", "value": {"type": "c", "path": "/dev/null", "major": 1, "minor": 3}}])) == set()
	codes(json.patch(base, [{"op": "add", "path": "/deviceRules/-", "value": {"allow": true, "type": "a", "major": -1, "minor": -1, "access": "rwm"}}])) == {"DEVICE_NOT_ALLOWED"}
}

test_floor_switches if {
	codes(json.patch(base, [{"op": "replace", "path": "/rootfs/readOnly", "value": false}])) == {"ROOTFS_WRITABLE"}
	codes(json.patch(base, [{"op": "replace", "path": "/process/noNewPrivileges", "value": false}])) == {"NO_NEW_PRIVS_DISABLED"}
	codes(json.patch(base, [{"op": "add", "path": "/sysctls/kernel.panic", "value": "1"}])) == {"SYSCTL_NOT_ALLOWED"}
	codes(json.patch(base, [{"op": "replace", "path": "/operation", "value": "attach"}])) == {"OPERATION_UNKNOWN"}
	codes(json.patch(base, [{"op": "replace", "path": "/apiVersion", "value": "bulwark.dev/run/v0"}])) == {"REQUEST_VERSION"}
}

# The floor's tables must not contradict each other: nothing forbidden is below the ceiling,
# and the operator's default grants stay below it.
test_floor_tables_consistent if {
	count(run.capability_ceiling & run.forbidden_capabilities) == 0
	every c in data.bulwark.defaults.grantable_capabilities {
		run.capability_ceiling[c]
	}
	every r in run.forbidden_host_trees {
		startswith(r, "/")
		not endswith(r, "/")
	}
}

# The per-pod paths of a CRI tenant (policy/examples/cri-tenant.json): only the pod's own, as
# the runtime proved it (input.pod), writable where the entry says so.
cri_tenants := {"k8s": object.union(tenants.acme, {"pod_bind_sources": [
	{"source": "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/{sandbox}/shm", "destination": "/dev/shm", "writable": true},
	{"source": "/var/lib/kubelet/pods/{pod_uid}/volumes/kubernetes.io~projected/*"},
]})}

cri_input(pod, mount) := json.patch(base, [
	{"op": "replace", "path": "/tenant", "value": "k8s"},
	{"op": "add", "path": "/pod", "value": pod},
	{"op": "add", "path": "/mounts/-", "value": mount},
])

cri_codes(inp) := {r.code | some r in d.reasons} if {
	d := run.decision with input as inp with data.bulwark.tenants as cri_tenants
}

shm(id, ro) := {"type": "bind", "source": sprintf("/run/containerd/io.containerd.grpc.v1.cri/sandboxes/%s/shm", [id]), "destination": "/dev/shm", "options": ["rbind"], "readOnly": ro, "bind": true}

token(uid) := {"type": "bind", "source": sprintf("/var/lib/kubelet/pods/%s/volumes/kubernetes.io~projected/kube-api-access-x", [uid]), "destination": "/var/run/secrets/kubernetes.io/serviceaccount", "options": ["rbind", "ro"], "readOnly": true, "bind": true}

test_cri_pod_paths_allowed if {
	count(cri_codes(cri_input({"sandbox": "abc"}, shm("abc", false)))) == 0
	count(cri_codes(cri_input({"sandbox": "abc", "uid": "u-1"}, token("u-1")))) == 0
}

test_cri_other_pods_paths_refused if {
	cri_codes(cri_input({"sandbox": "abc"}, shm("other", false)))["MOUNT_HOST_PATH_FORBIDDEN"]
	cri_codes(cri_input({"sandbox": "abc", "uid": "u-1"}, token("u-2")))["MOUNT_HOST_PATH_FORBIDDEN"]
	cri_codes(json.patch(cri_input({"sandbox": "abc"}, shm("abc", true)), [{"op": "remove", "path": "/pod"}]))["MOUNT_HOST_PATH_FORBIDDEN"]
	# No uid proved: a {pod_uid} pattern matches nothing, not an empty component.
	cri_codes(cri_input({"sandbox": "abc"}, token("")))["MOUNT_HOST_PATH_FORBIDDEN"]
}

test_cri_writable_only_where_the_entry_says if {
	w := object.union(token("u-1"), {"readOnly": false, "options": ["rbind"]})
	cri_codes(cri_input({"sandbox": "abc", "uid": "u-1"}, w))["MOUNT_WRITABLE_NOT_ALLOWED"]
}

test_cri_trusted_netns_dir if {
	ns := object.union(base.namespaces, {"network": {"shared": true, "path": "/run/netns/cni-1", "join": "netns"}})
	inp := json.patch(base, [{"op": "replace", "path": "/namespaces", "value": ns}])
	codes(inp)["NAMESPACE_SHARED"]
	d := run.decision with input as inp with data.bulwark.tenants as {"acme": object.union(tenants.acme, {"trusted_netns_dirs": ["/run/netns/"]})}
	d.allow
	pod := object.union(base.namespaces, {"network": {"shared": true, "path": "/proc/5/ns/net", "join": "pod", "pod": "abc"}})
	count(codes(json.patch(base, [{"op": "replace", "path": "/namespaces", "value": pod}]))) == 0
}
