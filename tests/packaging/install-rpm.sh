#!/usr/bin/env bash
# Installs, upgrades and erases the .rpm inside an overlay of / in a private mount
# namespace (rpm's database lands in the overlay too). Run by tests/packaging.rs under
# `unshare -m`. The host is Debian, so rpm knows none of the libraries the package needs:
# --nodeps.  Usage: install-rpm.sh SCRATCH RPM1 RPM2
set -euo pipefail
S=$1 RPM1=$2 RPM2=$3
source "$(dirname "$0")/overlay.sh"
cp "$RPM1" "$M/tmp/runner-1.rpm"
cp "$RPM2" "$M/tmp/runner-2.rpm"

echo "== install"
in_root rpm -i --nodeps /tmp/runner-1.rpm
[ "$(in_root stat -c %a /usr/bin/runner)" = 755 ] || fail "binary mode"
in_root rpm -qc runner | grep -qx /etc/supervisor.yaml || fail "config not marked %config"
in_root /usr/bin/runner check --config /etc/supervisor.yaml

echo "== edit, then upgrade"
echo "# local edit" >> "$M/etc/supervisor.yaml"
in_root rpm -U --nodeps /tmp/runner-2.rpm
grep -q '^# local edit' "$M/etc/supervisor.yaml" || fail "upgrade lost the config edit"
in_root rpm -q runner | grep -q -- '-2\.' || fail "upgrade did not happen"

echo "== erase"
mkdir -p "$M/var/lib/runner" && touch "$M/var/lib/runner/state.json"
in_root rpm -e --nodeps runner
in_root test ! -e /usr/bin/runner || fail "binary left after erase"
in_root test ! -e /var/lib/runner || fail "state left after erase"
# rpm keeps an edited config as .rpmsave, as it should.
in_root test -e /etc/supervisor.yaml.rpmsave || fail "edited config not saved as .rpmsave"
echo "ok"
