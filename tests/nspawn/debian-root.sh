#!/usr/bin/env bash
# Prints the path of a minimal Debian 12 root with systemd as PID 1, made once with debootstrap
# and cached under $RUNNER_TEST_CACHE (default /var/cache/runner-tests), keyed by everything
# that goes into it: suite, variant, packages, mirror and this script. The root is never
# booted in place: callers copy it (cp --reflink=auto -a) and boot the copy.
set -euo pipefail
cache="${RUNNER_TEST_CACHE:-/var/cache/runner-tests}"
suite=bookworm
include=systemd,systemd-sysv,dbus,procps
# The mirror apt on this machine uses, so a proxy or a local mirror it is set up for is used
# too; Debian's archive when none is found.
mirror=$(grep -rhoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
    awk '{print $2}' | head -n 1 || true)
mirror="${RUNNER_TEST_MIRROR:-${mirror:-http://deb.debian.org/debian}}"
key=$(printf '%s\n' "$suite" minbase "$include" "$mirror" "$(sha256sum "$0" | cut -c1-64)" |
    sha256sum | cut -c1-16)
root="$cache/debian-$suite-$key"
if [ -e "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
mkdir -p "$cache"
# Another test run may be making the same root: one at a time.
exec 9>"$cache/.lock"
flock 9
if [ ! -e "$root/.complete" ]; then
    tmp="$root.tmp.$$"
    rm -rf "$tmp"
    start=$SECONDS
    # Bounded: a stalled mirror must fail the test, not hang CI.
    timeout 900 debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
        { tail -n 30 "$tmp.log" >&2; rm -rf "$tmp" "$tmp.log"; exit 1; }
    # What the boots need: no getty on the console, no first-boot questions, a hostname.
    echo runner-test >"$tmp/etc/hostname"
    : >"$tmp/etc/machine-id"
    chroot "$tmp" systemctl mask console-getty.service getty@.service \
        systemd-firstboot.service systemd-timesyncd.service apt-daily.timer \
        apt-daily-upgrade.timer >/dev/null 2>&1 || true
    chroot "$tmp" apt-get clean
    rm -f "$tmp.log"
    echo "debootstrap of $suite from $mirror: $((SECONDS - start)) s" >"$tmp/.complete"
    rm -rf "$root"
    mv "$tmp" "$root"
    # Roots made from other inputs (an older script, another mirror) are not used again.
    find "$cache" -mindepth 1 -maxdepth 1 -name 'debian-*' ! -name "${root##*/}" -exec rm -rf {} +
fi
cat "$root/.complete" >&2
echo "$root"
