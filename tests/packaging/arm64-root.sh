#!/usr/bin/env bash
# The arm64 .deb on Debian arm64, under qemu-user: makes (or reuses) a minimal Debian
# bookworm arm64 root with debootstrap, then, in a private mount namespace over a
# throw-away overlay of that root, installs the package with dpkg, checks the shipped
# config, runs a shipped job with `runner once`, reads it back with `runner logs`, and
# purges, checking that nothing of the package is left. Every arm64 program in the root
# (dpkg, sh, runner) runs through binfmt_misc and qemu-aarch64-static.
#
# Usage, as root: tests/packaging/arm64-root.sh DEB [ROOT_CACHE]
#   DEB         target/packaging/aarch64-unknown-linux-gnu/runner_*_arm64.deb
#               (packaging/build --target aarch64-unknown-linux-gnu)
#   ROOT_CACHE  where the debootstrapped root is kept between runs
#               (default /var/tmp/runner-arm64-root; about 200 MB, 5-15 minutes to make)
# Needs debootstrap, qemu-user-static and binfmt-support with qemu-aarch64 enabled, and the
# Debian archive. Prints `ok` last when all passed. docs/targets.md has its last result.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 DEB [ROOT_CACHE]" >&2; exit 2; }
DEB=$(realpath "$1")
CACHE=${2:-/var/tmp/runner-arm64-root}
fail() { echo "FAIL: $*" >&2; exit 1; }
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
    fail "binfmt_misc has no enabled qemu-aarch64 entry (update-binfmts --enable qemu-aarch64)"

if [ ! -x "$CACHE/root/usr/bin/dpkg" ]; then
    echo "== debootstrap --arch=arm64 bookworm"
    rm -rf "$CACHE/root"
    mkdir -p "$CACHE"
    t=$SECONDS
    debootstrap --arch=arm64 --variant=minbase bookworm "$CACHE/root" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 20 "$CACHE/debootstrap.log" >&2; fail "debootstrap"; }
    echo "root made in $((SECONDS - t)) s"
fi

# Everything below in a private mount namespace, on an overlay: the cached root stays clean.
if [ -z "${IN_NAMESPACE:-}" ]; then
    exec env IN_NAMESPACE=1 unshare -m "$0" "$@"
fi
mount --make-rprivate /
S=$(mktemp -d /var/tmp/runner-arm64-run.XXXXXX)
trap 'umount -R "$S/root" 2>/dev/null || true; rm -rf "$S"' EXIT
mkdir -p "$S/upper" "$S/work" "$S/root"
mount -t overlay overlay -o "lowerdir=$CACHE/root,upperdir=$S/upper,workdir=$S/work" "$S/root"
M="$S/root"
mount -t proc proc "$M/proc"
mount --bind /dev "$M/dev"
mount -t tmpfs tmpfs "$M/run"
mount -t tmpfs tmpfs "$M/tmp"
in_root() { chroot "$M" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

[ "$(in_root dpkg --print-architecture)" = arm64 ] || fail "the root is not arm64"
in_root uname -m
cp "$DEB" "$M/tmp/runner.deb"

echo "== install"
in_root dpkg -i /tmp/runner.deb
in_root dpkg-query -W -f='${Package} ${Version} ${Architecture} ${Status}\n' runner
in_root file -b /usr/bin/runner 2>/dev/null || true
in_root /usr/bin/runner --version
in_root /usr/bin/runner check --config /etc/supervisor.yaml

echo "== runner once (a shipped job)"
in_root /usr/bin/runner once weekly-example --config /etc/supervisor.yaml | tee "$S/once.out"
grep -qx weekly "$S/once.out" || fail "runner once weekly-example did not print its output"
in_root /usr/bin/runner logs --config /etc/supervisor.yaml --json | tee "$S/logs.out"
grep -q '"job":"weekly-example"' "$S/logs.out" || fail "the run is not in the ring"
grep -q '"exit_code":0' "$S/logs.out" || fail "the run did not succeed"
in_root test -f /var/lib/runner/runs.ring || fail "no ring in /var/lib/runner"

echo "== purge"
in_root dpkg --purge runner
left=$(in_root sh -c 'ls -d /usr/bin/runner /etc/supervisor.yaml /var/lib/runner /usr/share/doc/runner /usr/lib/systemd/system/runner.service 2>/dev/null' || true)
[ -z "$left" ] || fail "left after purge: $left"
in_root dpkg-query -W runner 2>/dev/null && fail "dpkg still knows the package"
echo ok
