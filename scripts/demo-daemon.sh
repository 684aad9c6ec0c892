#!/usr/bin/env bash
# The daemon part of `make demo` (run by demo-run.sh with its state root, which holds the signed
# image demo/busybox:1): bulwarkd on a temp socket over that state root, with two tenants made up
# for the demo — uids 63001 (tenant-a) and 63002 (tenant-b), no /etc/passwd entries: their
# commands run with `setpriv --reuid`. Tenant A runs containers through the stock docker CLI
# (`docker -H unix://...`) and through `bulwark --host`; tenant B neither sees nor reaches them
# (each refusal shown, and audited); the audit chain is verified at the end, through the daemon and
# daemonless. The EXIT trap stops the daemon and removes what it ran.
set -euo pipefail

STATE=${1:?usage: demo-daemon.sh STATE_ROOT}
cd "$(dirname "$0")/.."
BIN=${BULWARK_BIN:-$PWD/bin}
BULWARK=$BIN/bulwark
BULWARKD=$BIN/bulwarkd
UID_A=63001 UID_B=63002 SOCK_GID=63009

[[ -x $BULWARKD ]] || { echo "demo-daemon: $BULWARKD missing: run make build" >&2; exit 1; }
HAVE_DOCKER=1
command -v docker >/dev/null || HAVE_DOCKER=0

# The socket's directory is reachable by the tenants; the state root is not.
DIR=$(mktemp -d /tmp/bulwark-demo-daemon.XXXXXX)
chmod 0711 "$DIR"
SOCK=$DIR/bulwark.sock
DAEMON_PID=
cleanup() {
	if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		for uid in $UID_A $UID_B; do # whatever a tenant left, removed as that tenant
			for id in $(as_uid "$uid" "$BULWARK" ps -a -q 2>/dev/null); do
				as_uid "$uid" "$BULWARK" rm -f "$id" >/dev/null 2>&1 || true
			done
		done
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
if [[ -t 1 ]]; then
	section() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	section() { printf '\n== %s\n' "$*"; }
fi

# as_uid UID CMD...: run CMD as a tenant's uid, with the socket's group; its docker config in DIR.
as_uid() {
	local uid=$1
	shift
	mkdir -p "$DIR/home-$uid" && chown "$uid:$uid" "$DIR/home-$uid"
	setpriv --reuid="$uid" --regid="$uid" --groups="$SOCK_GID" --inh-caps=-all \
		env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$DIR/home-$uid" DOCKER_HOST="unix://$SOCK" BULWARK_HOST="unix://$SOCK" "$@"
}
# show WHO CMD...: print a command line as typed (arguments with spaces quoted, bin/ left out).
show() {
	local who=$1 arg line=
	shift
	for arg in "${@/#$BIN\//}"; do
		[[ $arg == *" "* ]] && arg="'$arg'"
		line+=" $arg"
	done
	printf '%s$%s\n' "$who" "$line"
}
# tenant A|B WANT CMD...: run CMD as that tenant, show it, and check its exit status.
tenant() {
	local who=$1 want=$2 uid rc=0
	shift 2
	uid=$UID_A
	[[ $who == A ]] || uid=$UID_B
	show "$who" "$@"
	as_uid "$uid" "$@" 2>&1 || rc=$?
	if [[ $want == refused && $rc == 0 ]] || [[ $want != refused && $rc != "$want" ]]; then
		echo "demo-daemon: tenant $who: '$*' exited $rc, want $want" >&2
		exit 1
	fi
	echo "(exit status $rc)"
}

section "bulwarkd: the Docker API for two tenants, over this demo's state root"
mkdir -p "$DIR/policy"
python3 - "$DIR/policy/data.json" <<'PY'
import json, sys
d = json.load(open("policy/default/data.json"))
d["bulwark"]["tenants"].update({"tenant-a": {}, "tenant-b": {}})
json.dump(d, open(sys.argv[1], "w"), indent=1)
PY
cat >"$DIR/bulwarkd.json" <<JSON
{"socket": "$SOCK", "socket_group": "$SOCK_GID", "state_root": "$STATE", "policy_dir": "$DIR/policy",
 "tenants": {"tenant-a": {"uids": [$UID_A]}, "tenant-b": {"uids": [$UID_B]}}}
JSON
echo "(tenants: uid $UID_A is tenant-a, uid $UID_B is tenant-b, from the connection's SO_PEERCRED; root is the operator)"
"$BULWARKD" --config "$DIR/bulwarkd.json" 2>"$DIR/bulwarkd.log" &
DAEMON_PID=$!
for _ in $(seq 100); do [[ -S $SOCK ]] && break; sleep 0.1; done
[[ -S $SOCK ]] || { echo "demo-daemon: bulwarkd did not listen:" >&2; cat "$DIR/bulwarkd.log" >&2; exit 1; }
ls -l "$SOCK"

section "Tenant A: the stock docker CLI and bulwark --host, both through bulwarkd"
if [[ $HAVE_DOCKER == 1 ]]; then
	tenant A 0 docker run --rm demo/busybox:1 sh -c 'echo "hello through docker, uid $(id -u) in $(hostname)"'
	tenant A 0 docker run -d --name web demo/busybox:1 sh -c 'echo web up; exec sleep 300'
else
	echo "(the docker CLI is not installed: tenant A uses bulwark --host only)"
	tenant A 0 "$BULWARK" run -d --name web demo/busybox:1 sh -c 'echo web up; exec sleep 300'
fi
tenant A 7 "$BULWARK" run --rm demo/busybox:1 sh -c 'echo "hello through bulwark --host"; exit 7'
tenant A 0 "$BULWARK" ps
WEB=$(as_uid $UID_A "$BULWARK" ps -q)
tenant A 0 "$BULWARK" logs web
tenant A 0 "$BULWARK" exec web sh -c 'echo "exec in $(hostname) as uid $(id -u)"'
echo "(a dry run through the daemon, POST /bulwark/v1/decide: the decision and the plan, nothing started)"
show A bulwark run --dry-run --cap-add SYS_ADMIN demo/busybox:1 id
rc=0
as_uid $UID_A "$BULWARK" run --dry-run --cap-add SYS_ADMIN demo/busybox:1 id 2>"$DIR/decide.err" >"$DIR/plan.json" || rc=$?
grep -E "^policy decision|^  reason" "$DIR/decide.err"
[[ $rc == 125 ]] || { echo "demo-daemon: the dry run exited $rc, want 125" >&2; exit 1; }
echo "(exit status $rc; the plan: $(wc -c <"$DIR/plan.json") bytes of JSON)"

section "Tenant B: nothing of A's is visible, and every reach across is refused"
echo "(A's name and A's full id answer as if nothing had that name: another tenant's id reveals nothing)"
tenant B 0 "$BULWARK" ps -a
tenant B refused "$BULWARK" inspect web
tenant B refused "$BULWARK" inspect "$WEB"
tenant B refused "$BULWARK" stop "$WEB"
tenant B refused "$BULWARK" logs "$WEB"
if [[ $HAVE_DOCKER == 1 ]]; then
	tenant B refused docker exec "$WEB" id
	tenant B refused docker kill "$WEB"
fi
tenant A 0 "$BULWARK" ps
echo "(the operator's view of the refusals, from the audit log:)"
"$BULWARK" --root "$STATE" audit query --type daemon | python3 -c 'import json,sys
for l in sys.stdin:
    r=json.loads(l); a=r.get("attrs") or {}
    if r["action"]=="api.refused": print(r["seq"], "tenant", r["tenant"], "uid", r["actor"]["uid"], a.get("operation"), "owner", a.get("owner"), a.get("codes"))'

section "Each tenant's own trail and trust, and the chain verified"
tenant A 0 "$BULWARK" trust status
tenant B 0 "$BULWARK" audit tail -n 2
tenant A 0 "$BULWARK" stop -t 1 web
tenant A 0 "$BULWARK" rm web
tenant A 0 "$BULWARK" audit verify
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || true
DAEMON_PID=
echo "(bulwarkd stopped; the same chain verified daemonless:)"
echo "$ bulwark audit verify"
"$BULWARK" --root "$STATE" audit verify
