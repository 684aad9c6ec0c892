#!/usr/bin/env bash
# Runs the OCI runtime-tools validation suite (github.com/opencontainers/runtime-tools v0.9.0, the only
# version the Go module proxy serves) against an OCI runtime binary and summarises the TAP output.
#
#   RUNTIME=/path/to/runtime scripts/validation.sh [test-name ...]     (default: every validation/*.t)
#
# Environment:
#   RUNTIME           runtime binary (required; a name on PATH is fine: RUNTIME=runc)
#   VALIDATION_CACHE  where the built suite is kept between runs (default ~/.cache/bulwark/runtime-tools-v0.9.0)
#   VALIDATION_OUT    where the raw TAP log and the summary go (default: a new temp dir, printed)
#
# Needs: go, tar, unshare (util-linux), node-tap (apt-get install --no-install-recommends node-tap), root.
# The suite runs inside `unshare --mount --propagation private` because two of its tests leak mounts
# into the caller's namespace, with TMPDIR pointing at a scratch dir that is removed afterwards.
set -euo pipefail

: "${RUNTIME:?set RUNTIME=/path/to/runtime}"
RUNTIME_BIN=$(command -v "$RUNTIME" || true)
[[ -n "$RUNTIME_BIN" && -x "$RUNTIME_BIN" ]] || { echo "validation: runtime $RUNTIME not found" >&2; exit 2; }
RUNTIME_BIN=$(readlink -f "$RUNTIME_BIN")

RT_VERSION=v0.9.0
CACHE=${VALIDATION_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark/runtime-tools-$RT_VERSION}
export NODE_PATH=/usr/share/nodejs

command -v tap >/dev/null || { echo "validation: node-tap missing: apt-get install --no-install-recommends node-tap" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "validation: must run as root" >&2; exit 2; }

build_suite() {
	echo "validation: building runtime-tools $RT_VERSION in $CACHE" >&2
	local src scratch
	scratch=$(mktemp -d)
	# shellcheck disable=SC2064
	trap "rm -rf '$scratch'" RETURN
	(cd "$scratch" && GOFLAGS=-mod=mod GOWORK=off go mod init scratch >/dev/null 2>&1 &&
		GOFLAGS=-mod=mod GOWORK=off go mod download github.com/opencontainers/runtime-tools@$RT_VERSION)
	src=$(cd "$scratch" && GOFLAGS=-mod=mod GOWORK=off go mod download -json \
		github.com/opencontainers/runtime-tools@$RT_VERSION | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d "$src" ]] || { echo "validation: cannot download runtime-tools $RT_VERSION" >&2; return 1; }
	rm -rf "$CACHE.new" && mkdir -p "$(dirname "$CACHE")"
	cp -r "$src" "$CACHE.new" && chmod -R u+w "$CACHE.new"
	(
		cd "$CACHE.new"
		export GOFLAGS=-mod=mod GOWORK=off
		go mod init github.com/opencontainers/runtime-tools >/dev/null 2>&1
		# v0.9.0 predates modules; these are the versions it was written against.
		go get github.com/opencontainers/runtime-spec@v1.0.2 github.com/opencontainers/selinux@v1.8.0 >/dev/null 2>&1
		go mod tidy >/dev/null 2>&1
		CGO_ENABLED=0 go build -o runtimetest ./cmd/runtimetest
		for d in validation/*/; do
			name=$(basename "$d")
			[[ $name == util ]] && continue
			go build -o "validation/$name.t" "./validation/$name"
		done
	)
	rm -rf "$CACHE" && mv "$CACHE.new" "$CACHE"
	touch "$CACHE/.built"
}

[[ -f "$CACHE/.built" ]] || build_suite

OUT=${VALIDATION_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$SCRATCH/tmp"
# bulwark-runc keeps its persistent state (policy revision, audit log) here instead of /var/lib.
export BULWARK_STATE_ROOT="$SCRATCH/state-root"

cd "$CACHE"
if (($#)); then
	tests=()
	for t in "$@"; do tests+=("validation/${t%.t}.t"); done
else
	tests=(validation/*.t)
fi
name=$(basename "$RUNTIME_BIN")
log="$OUT/$name.tap"
echo "validation: ${#tests[@]} test files against $RUNTIME_BIN; TAP log: $log" >&2
# Containers the suite leaves behind (a test that fails between create and delete) are removed
# afterwards; those that existed before the run are not touched.
before=$("$RUNTIME_BIN" list -q 2>/dev/null | sort || true)
start=$(date +%s)
# tap exits non-zero when any test fails; the summary below is the result.
env RUNTIME="$RUNTIME_BIN" TMPDIR="$SCRATCH/tmp" \
	unshare --mount --propagation private \
	tap -j1 --no-coverage --reporter=tap --timeout=120 "${tests[@]}" >"$log" 2>&1 || true
secs=$(($(date +%s) - start))
leftover=$(comm -13 <(echo "$before") <("$RUNTIME_BIN" list -q 2>/dev/null | sort) | grep -v '^$' || true)
for id in $leftover; do
	"$RUNTIME_BIN" delete --force "$id" >/dev/null 2>&1 || echo "validation: could not delete leftover $id" >&2
done

# Assertions are the indented (subtest) TAP lines; the unindented ones are one result per test file.
# A "# SKIP" directive counts as skipped, not as ok.
ok=$(grep -Ec '^[[:space:]]+ok [0-9]+' "$log" || true)
skip=$(grep -Eic '^[[:space:]]+(not )?ok [0-9]+.*# skip' "$log" || true)
notok=$(grep -Ec '^[[:space:]]+not ok [0-9]+' "$log" || true)
files_ok=$(grep -Ec '^ok [0-9]+ - ' "$log" || true)
files_fail=$(grep -Ec '^not ok [0-9]+ - ' "$log" || true)
{
	echo "runtime:    $RUNTIME_BIN ($("$RUNTIME_BIN" --version 2>/dev/null | head -1))"
	echo "suite:      runtime-tools $RT_VERSION, ${#tests[@]} files, ${secs}s"
	echo "files:      $files_ok ok, $files_fail not ok"
	echo "assertions: $((ok - skip)) ok, $notok not ok, $skip skipped"
	echo "leftovers:  $(echo "$leftover" | grep -c . || true) container(s) the suite did not delete (removed)"
	echo "failing assertions (file: assertion):"
	awk '/^# Subtest: /{f=$3} /^[[:space:]]+not ok/{sub(/^[[:space:]]+/, ""); print "  " f ": " $0}' "$log"
	echo "failing files:"
	grep -E '^not ok [0-9]+ - ' "$log" | sed 's/^/  /' || true
} | tee "$OUT/$name.summary"
