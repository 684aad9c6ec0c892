#!/usr/bin/env bash
# Bulwark runtime demo (`make demo-runc`, after `make build`): build a busybox-static rootfs in a temp dir, run
# it in a sandbox with bin/bulwark-runc, and print what the process sees from inside — id maps,
# capabilities, no_new_privs, seccomp, namespaces vs the host's, mounts, and (with bin/bulwark-probe)
# the errno of operations the floor forbids. Then show the floor at work on a spec: a dropped
# capability recorded as a raise, a forbidden one refused. Everything lives in one temp dir (bundle
# and --root) that the EXIT trap removes, so the demo is idempotent and leaves nothing behind.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BULWARK_BIN:-$PWD/bin}
RUNC=$BIN/bulwark-runc
PROBE=$BIN/bulwark-probe
BUSYBOX=${BUSYBOX:-/usr/bin/busybox}

[[ $(id -u) == 0 ]] || { echo "demo: run as root (sandboxes need user namespaces with a subordinate range, cgroups, mounts)" >&2; exit 1; }
[[ -x $RUNC ]] || { echo "demo: $RUNC missing: run make build" >&2; exit 1; }
[[ -x $BUSYBOX ]] || { echo "demo: $BUSYBOX missing: apt-get install busybox-static" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bulwark-demo.XXXXXX)
# The container's root is an unprivileged host id: it must be able to traverse to its bundle.
chmod 0711 "$WORK"
STATE=$WORK/state
# bulwark-runc's persistent state (policy revision, audit log) stays in the temp dir too.
export BULWARK_STATE_ROOT=$WORK/persistent
IDS=()
cleanup() {
	local id
	for id in "${IDS[@]}"; do
		"$RUNC" --root "$STATE" delete --force "$id" >/dev/null 2>&1 || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
# Turn signals into a normal exit so the EXIT trap always runs.
trap "exit 130" INT TERM HUP
runc_() { "$RUNC" --root "$STATE" "$@"; }
if [[ -t 1 ]]; then
	section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	section() { printf '\n== %s\n' "$*"; }
fi

# --- rootfs: static busybox, one symlink per applet, the probe when built --------------------------
BUNDLE=$WORK/bundle
ROOTFS=$BUNDLE/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,tmp,run,var/tmp,etc,root}
chmod 0711 "$BUNDLE"
chmod 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[[ $applet == busybox ]] || ln -sf busybox "$ROOTFS/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOTFS/etc/group"
HAVE_PROBE=0
if [[ -x $PROBE ]]; then
	cp "$PROBE" "$ROOTFS/bin/probe"
	HAVE_PROBE=1
fi

# The script the sandboxed process runs; the host's namespace ids are baked in for comparison.
{
	echo '#!/bin/sh'
	for ns in user mnt pid net ipc uts cgroup; do
		echo "HOST_$ns='$(readlink "/proc/self/ns/$ns")'"
	done
	cat <<'INSIDE'
echo "process:      $(id)   pid $$   hostname $(hostname)"
echo "uid_map:      $(cat /proc/self/uid_map | tr -s ' ')   (container uid -> host uid, count)"
echo "gid_map:      $(cat /proc/self/gid_map | tr -s ' ')"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status |
	sed 's/^/              /; s/:\t/: /'
echo "namespaces:   (inside vs host)"
for ns in user mnt pid net ipc uts cgroup; do
	in=$(readlink /proc/self/ns/$ns)
	eval host=\$HOST_$ns
	if [ "$in" = "$host" ]; then verdict="SHARED WITH HOST"; else verdict="new"; fi
	printf '              %-7s %-22s host %-22s %s\n' "$ns" "$in" "$host" "$verdict"
done
echo "network:      $(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
echo "mounts:"
sed 's/^/              /' /proc/self/mounts
if touch /probe-write 2>/dev/null; then echo "rootfs:       WRITABLE"; else echo "rootfs:       read-only ($(touch /x 2>&1 | sed 's/.*: //'))"; fi
INSIDE
} >"$ROOTFS/inside.sh"
chmod 0755 "$ROOTFS/inside.sh"

# --- spec: bulwark-runc's own default, made non-interactive -------------------------------------
runc_ spec --bundle "$BUNDLE"
sed -i -e 's/"terminal": true/"terminal": false/' \
	-e 's|^\(\t*\)"sh"$|\1"/bin/sh", "/inside.sh"|' "$BUNDLE/config.json"

section "Host"
echo "kernel $(uname -r); runtime $("$RUNC" --version | head -1); state root $STATE"

section "Inside a sandbox (bulwark-runc run; the spec comes from bulwark-runc spec)"
IDS+=(demo-inside)
runc_ run --bundle "$BUNDLE" demo-inside

if ((HAVE_PROBE)); then
	section "Forbidden operations, as the probe sees them (errno each one got)"
	sed -i 's|"/bin/sh", "/inside.sh"|"/bin/probe", "forbidden"|' "$BUNDLE/config.json"
	IDS+=(demo-probe)
	out=$(runc_ run --bundle "$BUNDLE" demo-probe)
	if command -v jq >/dev/null; then
		# An empty errno means the operation succeeded (sockets the floor allows, for contrast).
		jq -r '.forbidden // {} | to_entries[] | "  \(.key): \(if .value == "" then "allowed" else .value end)"' <<<"$out"
	else
		echo "$out"
	fi
	sed -i 's|"/bin/probe", "forbidden"|"/bin/sh", "/inside.sh"|' "$BUNDLE/config.json"
fi

section "The floor on a spec: CAP_NET_RAW is not grantable, so it is dropped and recorded"
sed -i 's/"CAP_KILL"/"CAP_NET_RAW"/g' "$BUNDLE/config.json"
sed -i 's|"/bin/sh", "/inside.sh"|"/bin/true"|' "$BUNDLE/config.json"
IDS+=(demo-raise)
runc_ create --bundle "$BUNDLE" demo-raise </dev/null
echo "\$ bulwark-runc state demo-raise"
runc_ state demo-raise
runc_ start demo-raise
runc_ delete --force demo-raise

section "The floor on a spec: CAP_SYS_ADMIN is forbidden, so create is refused"
sed -i 's/"CAP_NET_RAW"/"CAP_SYS_ADMIN"/g' "$BUNDLE/config.json"
IDS+=(demo-refused)
if runc_ create --bundle "$BUNDLE" demo-refused </dev/null; then
	echo "UNEXPECTED: a spec asking for CAP_SYS_ADMIN was accepted" >&2
	exit 1
fi

section "Cleanup"
left=$(runc_ list -q)
echo "containers left under --root: ${left:-none}"
[[ -z $left ]]
