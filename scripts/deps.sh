#!/bin/sh
# deps.sh PACKAGE...: make sure the Debian packages a make target needs are installed.
# As root on a host with apt, the missing ones are installed (one `apt-get update`, then one
# `apt-get install`); otherwise the exact command is printed and the target fails, so the
# README's `make demo` and `make test` work on a fresh Debian 12 machine without a set-up step.
set -eu

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps: not a Debian system: make sure these (Debian names) are installed: $*" >&2
	exit 0
fi
missing=""
for pkg in "$@"; do
	case $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) in
	*" ok installed") ;;
	*) missing="$missing $pkg" ;;
	esac
done
[ -n "$missing" ] || exit 0

install="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: install them as root with: apt-get update && $install" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $missing
