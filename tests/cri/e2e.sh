#!/bin/sh
# Opt-in end-to-end test of Kubernetes pods on Bulwark through containerd's CRI (issue 15), not in
# the default suite: `make e2e-cri` (BULWARK_CRI_E2E=1, CRICTL=path to crictl v1.34.0 built from
# the Go module proxy in a scratch module, BULWARK_BIN=the built bin/). containerd 1.6 (Debian)
# runs with the CRI plugin in a private mount and network namespace with its own root, state,
# socket, /run, a CNI bridge conflist and a locally built pause image; nothing reaches the host.
set -eu
[ "${BULWARK_CRI_E2E:-}" = 1 ] || { echo "e2e-cri: skipped (set BULWARK_CRI_E2E=1)"; exit 0; }
HERE=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" != inner ]; then
	T=$(mktemp -d /tmp/bulwark-cri-e2e.XXXXXX)
	trap 'rm -rf "$T"' EXIT
	unshare --mount --net --propagation private "$0" inner "$T"
	exit $?
fi
T=$2
: "${CRICTL:?path to crictl}" "${BULWARK_BIN:?path to the built bin/}"
step() { echo "--- $*"; }
fail() {
	echo "FAIL: $*"
	[ -f "$T/containerd.log" ] && tail -30 "$T/containerd.log"
	# Whatever the failure left: pods (their shims and containers) and the task, then cgroups.
	${CRI:+$CRI rmp -fa} >/dev/null 2>&1 || true
	${CTR:+$CTR task rm -f t1} >/dev/null 2>&1 || true
	exit 1
}

mount -t tmpfs tmpfs /run
mkdir -p /run/netns "$T/cni" "$T/pol" "$T/sr" "$T/logs" "$T/img/pause" "$T/img/bb/bin"
ip link set lo up

step "images: a static pause and busybox-static"
gcc -static -O2 -o "$T/img/pause/pause" "$HERE/pause.c"
cp /usr/bin/busybox "$T/img/bb/bin/busybox"
for a in $(/usr/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$T/img/bb/bin/$a"; done
python3 "$HERE/mkimage.py" "$T/img/pause" localhost/bulwark-pause:1 "$T/pause.tar" /pause
python3 "$HERE/mkimage.py" "$T/img/bb" localhost/bulwark-busybox:1 "$T/bb.tar" /bin/sh

step "CNI bridge, tenant data, containerd config"
cat > "$T/cni/10-bulwark.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "bulwark-e2e", "plugins": [
  {"type": "bridge", "bridge": "bwcri0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.0.0/24"}]], "dataDir": "$T/ipam"}},
  {"type": "loopback"}]}
JSON
python3 - "$HERE/../../policy/examples/cri-tenant.json" "$T" > "$T/pol/data.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); T = sys.argv[2]
t = d["bulwark"]["tenants"]["k8s"]
for e in t["pod_bind_sources"]:
    e["source"] = e["source"].replace("/run/containerd/", T + "/state/").replace("/var/lib/containerd/", T + "/root/")
json.dump(d, sys.stdout)
PY
cat > "$T/bulwark-runc-k8s" <<SH
#!/bin/sh
exec $BULWARK_BIN/bulwark-runc --tenant k8s --policy $T/pol --state-root $T/sr "\$@"
SH
chmod 0755 "$T/bulwark-runc-k8s"
cat > "$T/config.toml" <<TOML
version = 2
root = "$T/root"
state = "$T/state"
[grpc]
  address = "$T/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$T/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/bulwark-pause:1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$T/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "bulwark"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.bulwark]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.bulwark.options]
        BinaryName = "$T/bulwark-runc-k8s"
        Root = "$T/runc"
        SystemdCgroup = false
TOML

step "containerd"
containerd --config "$T/config.toml" > "$T/containerd.log" 2>&1 &
CPID=$!
# The pods' cgroups (cgroupsPath /k8s.io/<id>) go with them; their parent, empty, goes here.
trap 'kill $CPID 2>/dev/null; wait $CPID 2>/dev/null; for d in /sys/fs/cgroup/*/k8s.io; do rmdir "$d" 2>/dev/null; done' EXIT
for i in $(seq 100); do [ -S "$T/containerd.sock" ] && break; sleep 0.1; done
CTR="ctr -a $T/containerd.sock -n k8s.io"
CRI="$CRICTL --runtime-endpoint unix://$T/containerd.sock --image-endpoint unix://$T/containerd.sock --timeout 60s"
$CTR images import "$T/pause.tar" >/dev/null
$CTR images import "$T/bb.tar" >/dev/null

step "crictl runp"
cat > "$T/pod.json" <<JSON
{"metadata": {"name": "p1", "namespace": "default", "uid": "e2e-uid-1", "attempt": 0}, "log_directory": "$T/logs", "linux": {}}
JSON
POD=$($CRI runp "$T/pod.json") || fail "runp"
ctrspec() { echo "{\"metadata\": {\"name\": \"$1\"}, \"image\": {\"image\": \"localhost/bulwark-busybox:1\"}, \"command\": [\"/bin/sh\", \"-c\", \"$2\"], \"log_path\": \"$1.log\", \"linux\": {\"security_context\": {\"namespace_options\": {\"pid\": 1}}}}" > "$T/$1.json"; }
# (pid 1 = CONTAINER, what kubelet asks unless shareProcessNamespace: a pod's pid namespace is not shared)
ctrspec srv "while true; do echo pong | nc -l -p 8080; done"
ctrspec cli "sleep 3600"
step "crictl create, start"
SRV=$($CRI create "$POD" "$T/srv.json" "$T/pod.json") || fail "create srv"
$CRI start "$SRV" >/dev/null || fail "start srv"
CLI=$($CRI create "$POD" "$T/cli.json" "$T/pod.json") || fail "create cli"
$CRI start "$CLI" >/dev/null || fail "start cli"

step "crictl exec: id, CapEff, NoNewPrivs, Seccomp"
$CRI exec "$SRV" id || fail "exec id"
ST=$($CRI exec "$SRV" grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status) || fail "exec status"
echo "$ST"
echo "$ST" | grep -q 'NoNewPrivs:[[:space:]]*1' || fail "NoNewPrivs not set"
echo "$ST" | grep -q 'Seccomp:[[:space:]]*2' || fail "not in seccomp filter mode"
echo "$ST" | grep -qv 'CapEff:[[:space:]]*000001ffffffffff' || fail "full capabilities"

step "two containers of the pod talk over localhost"
OUT=""
for i in $(seq 50); do OUT=$($CRI exec "$CLI" nc 127.0.0.1 8080 </dev/null 2>/dev/null || true); [ "$OUT" = pong ] && break; sleep 0.2; done
[ "$OUT" = pong ] || fail "client got '$OUT' from the server on the pod's loopback"

step "crictl stopp, rmp: nothing left"
$CRI stopp "$POD" >/dev/null || fail "stopp"
$CRI rmp "$POD" >/dev/null || fail "rmp"
[ -z "$($CRI pods -q)" ] || fail "pods left"
[ -z "$($CTR tasks ls -q)" ] || fail "tasks left"
[ -z "$($BULWARK_BIN/bulwark-runc --tenant k8s --root "$T/runc/k8s.io" list -q 2>/dev/null)" ] || fail "bulwark-runc containers left"
[ -z "$(ls /run/netns)" ] || fail "network namespaces left: $(ls /run/netns)"
[ -z "$(ls -d /sys/fs/cgroup/*/k8s.io/*/ 2>/dev/null)" ] || fail "cgroups left: $(ls -d /sys/fs/cgroup/*/k8s.io/*/)"

step "ctr task rm -f of a stopped task"
$CTR run -d --runtime io.containerd.runc.v2 --runc-binary "$T/bulwark-runc-k8s" localhost/bulwark-busybox:1 t1 /bin/true >/dev/null || fail "ctr run"
for i in $(seq 50); do $CTR tasks ls | grep -q 'STOPPED' && break; sleep 0.1; done
$CTR task rm -f t1 || fail "ctr task rm -f of a stopped task"
$CTR containers rm t1
echo "PASS"
