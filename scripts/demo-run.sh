#!/usr/bin/env bash
# Bulwark `run` demo (issue 5; `make demo` after `make build`): on a fresh state root, import a
# busybox-static image (a rootfs tar), create a TUF repository and sign the image, show the policy
# decision and the floor's raises for a run, run it, then show a run the policy denies
# (--cap-add SYS_ADMIN), an unsigned image refused, a sized named volume kept across containers,
# a published port (in a private network namespace), the compliance scanner, the audit trail of it
# all, and `audit verify`; bulwarkd on the same state root for two tenants, one refused across the
# boundary (scripts/demo-daemon.sh) — then one edited byte of the trail and a truncated tail
# caught. Everything lives in one temp dir that the EXIT trap removes (containers included), so
# the demo is idempotent and leaves nothing behind.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BULWARK_BIN:-$PWD/bin}
BULWARK=$BIN/bulwark
BUSYBOX=${BUSYBOX:-/usr/bin/busybox}

[[ $(id -u) == 0 ]] || { echo "demo-run: run as root (sandboxes need user namespaces with a subordinate range, cgroups, mounts)" >&2; exit 1; }
[[ -x $BULWARK ]] || { echo "demo-run: $BULWARK missing: run make build" >&2; exit 1; }
[[ -x $BUSYBOX ]] || { echo "demo-run: $BUSYBOX missing: apt-get install busybox-static" >&2; exit 1; }

WORK=$(mktemp -d /tmp/bulwark-demo-run.XXXXXX)
STATE=$WORK/state
b() { "$BULWARK" --root "$STATE" "$@"; }
cleanup() {
	local id
	if [[ -d $STATE/engine ]]; then
		for id in $(b ps -a -q 2>/dev/null); do
			b rm --force "$id" >/dev/null 2>&1 || true
		done
	fi
	b volume prune >/dev/null 2>&1 || true # a sized volume is a mounted filesystem
	rm -rf "$WORK"
}
trap cleanup EXIT
if [[ -t 1 ]]; then
	section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	section() { printf '\n== %s\n' "$*"; }
fi
show() { printf '$ bulwark %s\n' "$*"; }
# expect CODE CMD...: run a bulwark command that must exit with CODE, showing its output.
expect() {
	local want=$1 rc=0
	shift
	show "$@"
	b "$@" || rc=$?
	if [[ $rc != "$want" ]]; then
		echo "demo-run: 'bulwark $*' exited $rc, want $want" >&2
		exit 1
	fi
	echo "(exit status $rc)"
}

section "A busybox-static image from a rootfs tar"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[[ $applet == busybox ]] || ln -sf busybox "$ROOTFS/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOTFS/etc/group"
tar -C "$ROOTFS" -cf "$WORK/busybox.tar" .
show image import busybox.tar --tag demo/busybox:1
b image import "$WORK/busybox.tar" --tag demo/busybox:1
show image import busybox.tar --tag demo/unsigned:1
b image import "$WORK/busybox.tar" --tag demo/unsigned:1

section "Trust: a TUF repository on the state root, and the image signed"
show trust init
b trust init
show trust sign demo/busybox:1
b trust sign demo/busybox:1
show trust status
b trust status

section "What would run: the policy decision and the floor's raises (--dry-run)"
show run --dry-run --memory 64m demo/busybox:1 id
b run --dry-run --memory 64m demo/busybox:1 id >"$WORK/plan.json"
echo "(effective, floor-raised config as JSON: $(wc -c <"$WORK/plan.json") bytes; its process and resources:)"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); s=p["effectiveSpec"]; print(json.dumps({"process": {k: s["process"][k] for k in ("args","user","capabilities","noNewPrivileges")}, "root": s["root"], "resources": {k: s["linux"]["resources"].get(k) for k in ("memory","pids")}, "seccomp": s["linux"]["seccomp"]}, indent=2))' "$WORK/plan.json" 2>/dev/null || head -c 2000 "$WORK/plan.json"

section "Run it: TUF-verified, policy-allowed, under the floor"
expect 0 run --rm --memory 64m demo/busybox:1 sh -c 'echo "hello from $(hostname): uid $(id -u), caps $(grep CapEff /proc/self/status | cut -f2), root fs: $(touch /x 2>&1 || true)"'
expect 3 run --rm demo/busybox:1 sh -c 'exit 3'

section "Denied: --cap-add SYS_ADMIN (policy says why; nothing is created)"
expect 125 run --rm --cap-add SYS_ADMIN --name denied demo/busybox:1 id
expect 125 run --rm --cap-add SYS_PTRACE -v /etc:/hostetc --security-opt seccomp=unconfined demo/busybox:1 id

section "Host binds are deny-by-default: only what the operator allowlists, never the state root"
expect 125 run --rm -v /var/log:/logs demo/busybox:1 ls /logs
mkdir -p "$WORK/shared" "$WORK/policy"
echo "shared with the tenant" >"$WORK/shared/note.txt"
cat >"$WORK/policy/data.json" <<JSON
{"bulwark": {
  "defaults": {"grantable_capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"],
               "max_memory": 8589934592, "max_pids": 4096, "writable_bind_sources": []},
  "tenants": {"default": {"bind_sources": ["$WORK"]}}}}
JSON
echo "(operator data in $WORK/policy/data.json: tenant default may bind below $WORK)"
expect 0 run --rm --policy-dir "$WORK/policy" -v "$WORK/shared:/shared" demo/busybox:1 cat /shared/note.txt
expect 125 run --rm --policy-dir "$WORK/policy" -v "$STATE:/state" demo/busybox:1 ls /state

section "Refused: an unsigned image"
expect 125 run --rm demo/unsigned:1 id

section "A detached container: ps, logs, exec, stop, rm"
expect 0 run -d --name ticker demo/busybox:1 sh -c 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done'
sleep 1
expect 0 ps
expect 0 logs ticker
expect 0 exec ticker sh -c 'echo exec in $(hostname) as uid $(id -u)'
expect 0 stop -t 1 ticker
expect 0 rm ticker

section "A named volume: kept across containers, its size enforced by the kernel"
expect 0 volume create --opt size=8m data
expect 0 run --rm -v data:/data demo/busybox:1 sh -c 'echo "written by $(hostname)" >/data/note; dd if=/dev/zero of=/data/fill bs=1M count=16 2>&1 | grep -o "No space left on device"; rm /data/fill'
expect 0 run --rm -v data:/data:ro demo/busybox:1 cat /data/note
expect 0 volume rm data

section "A published port: busybox httpd behind -p (in a private network namespace: the demo's own host network)"
# unshare -n gives the demo a network namespace of its own: the bridge, veth and port mapping
# live there and vanish with it. The run is detached: the state root's supervisor (kept running
# in the host's namespace by the container "outside") sets its network up in the namespace of
# the client that ran it.
b run -d --name outside demo/busybox:1 sleep 60 >/dev/null
show run -d --name web -p 8080:8000 demo/busybox:1 httpd -f -p 8000 -h /tmp/www
unshare -n sh -c '
	ip link set lo up
	"$1" --root "$2" run -d --name web -p 8080:8000 demo/busybox:1 sh -c "mkdir -p /tmp/www && echo served from a sandbox >/tmp/www/index.html && exec httpd -f -p 8000 -h /tmp/www" >/dev/null || exit 1
	i=0
	until "$3" wget -qO- http://127.0.0.1:8080/ 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 50 ] || { echo "demo-run: nothing served on 127.0.0.1:8080" >&2; "$1" --root "$2" rm --force web; exit 1; }
		sleep 0.2
	done
	"$1" --root "$2" rm --force web >/dev/null
	"$1" --root "$2" network prune >/dev/null
' demo "$BULWARK" "$STATE" "$BUSYBOX"
b rm --force outside >/dev/null

section "The compliance scanner: the host, the state root and every running sandbox, read from the kernel"
expect 0 run -d --name scanned demo/busybox:1 sleep 30
show bench
b bench | grep -E "FAIL|Summary" || true
echo "(here BW-1.1 fails as the demo's state root is a temp dir on /, and BW-4.1 for demo/unsigned:1, imported unsigned above; the full report: bulwark bench; --format json|junit|sarif; docs/bench.md)"
expect 0 rm --force scanned

section "The audit trail of the denied run, and the whole chain verified"
show audit query --container denied
b audit query --container denied | python3 -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l); a=r.get("attrs") or {}
    print(r["seq"], r["type"]+"."+r["action"], {k: a[k] for k in ("result","reason_codes","revision","input_digest","step","error") if k in a})' 2>/dev/null || b audit query --container denied
expect 0 audit verify
echo "(nothing left behind: containers/ $(ls "$STATE/containers" | wc -l), engine/ $(ls "$STATE/engine" | wc -l))"

# The daemon on this state root: two tenants, one refused across the boundary (its own script).
"$PWD/scripts/demo-daemon.sh" "$STATE"

section "Tamper evidence: one edited byte of the trail, and a truncated tail"
SEG=$(ls "$STATE"/audit/audit-*.jsonl | tail -1)
cp "$SEG" "$WORK/segment.orig"
sed -i '0,/"result":"deny"/s//"result":"allow"/' "$SEG"
echo '(changed the first "result":"deny" to "allow")'
expect 1 audit verify
cp "$WORK/segment.orig" "$SEG"
echo '(restored; now export a signed checkpoint to keep elsewhere, then drop the last record)'
show audit checkpoint
b audit checkpoint | tee "$WORK/anchor.json" | head -5
head -n -1 "$SEG" >"$WORK/segment.cut" && cat "$WORK/segment.cut" >"$SEG"
expect 1 audit verify --anchor "$WORK/anchor.json"
