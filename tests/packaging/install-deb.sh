#!/usr/bin/env bash
# Installs, upgrades, removes and purges the .deb inside an overlay of / in a private mount
# namespace, so the host is never changed. Run by tests/packaging.rs under `unshare -m`.
# Usage: install-deb.sh SCRATCH DEB1 DEB2 SOCKDIR
set -euo pipefail
S=$1 DEB1=$2 DEB2=$3 SOCKDIR=$4
source "$(dirname "$0")/overlay.sh"
mkdir -p "$M/mnt/notify"
mount --bind "$SOCKDIR" "$M/mnt/notify"
cp "$DEB1" "$M/tmp/runner-1.deb"
cp "$DEB2" "$M/tmp/runner-2.deb"

echo "== install"
in_root dpkg -i /tmp/runner-1.deb
[ "$(in_root stat -c %a /usr/bin/runner)" = 755 ] || fail "binary mode"
[ "$(in_root stat -c %a:%U /etc/supervisor.yaml)" = "644:root" ] || fail "config mode/owner"
in_root dpkg-query -W -f='${Conffiles}\n' runner | grep -q '/etc/supervisor.yaml' || fail "config is not a conffile"
in_root test -f /usr/lib/systemd/system/runner.service || fail "unit missing"
in_root test -f /usr/share/man/man1/runner.1.gz || fail "man page missing"
in_root test -f /usr/share/bash-completion/completions/runner || fail "bash completion missing"
in_root /usr/bin/runner check --config /etc/supervisor.yaml
echo "== unit"
in_root systemd-analyze verify --man=no /usr/lib/systemd/system/runner.service
in_root systemd-analyze security --offline=true /usr/lib/systemd/system/runner.service | tail -n 1

echo "== start as the unit does"
exec_start=$(sed -n 's/^ExecStart=//p' "$M/usr/lib/systemd/system/runner.service")
# chroot execs env, which execs runner: $! is the daemon itself.
chroot "$M" env NOTIFY_SOCKET=/mnt/notify/notify.sock WATCHDOG_USEC=1000000 RUNNER_SYSLOG_SOCKET=/run/no-syslog $exec_start &
pid=$!
trap 'kill -KILL "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    [ -e "$SOCKDIR/done" ] && break
    sleep 0.1
done
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
trap - EXIT
[ "$status" = 0 ] || fail "daemon exit status $status"
[ -e "$SOCKDIR/done" ] || fail "READY=1 and WATCHDOG=1 did not both arrive"

echo "== sysvinit script, with Debian's start-stop-daemon"
in_root test -x /etc/init.d/runner || fail "init script missing"
in_root dpkg-query -W -f='${Conffiles}\n' runner | grep -q '/etc/init.d/runner' || fail "init script is not a conffile"
ls "$M"/etc/rc2.d/S*runner >/dev/null || fail "init script not in runlevel 2 (update-rc.d)"
in_root env RUNNER_SYSLOG_SOCKET=/run/no-syslog /etc/init.d/runner start
in_root /etc/init.d/runner status || fail "init script: not running after start"
in_root /etc/init.d/runner stop
st=0
in_root /etc/init.d/runner status || st=$?
[ "$st" = 3 ] || fail "init script: status $st after stop"

echo "== edit, then upgrade"
echo "# local edit" >> "$M/etc/supervisor.yaml"
in_root dpkg -i /tmp/runner-2.deb
grep -q '^# local edit' "$M/etc/supervisor.yaml" || fail "upgrade lost the config edit"
[ "$(in_root dpkg-query -W -f='${Version}' runner)" = "0.1.0-2" ] || fail "upgrade did not happen"

echo "== remove keeps the config"
in_root dpkg -r runner
in_root test ! -e /usr/bin/runner || fail "binary left after remove"
grep -q '^# local edit' "$M/etc/supervisor.yaml" || fail "remove lost the config"

echo "== purge leaves nothing"
mkdir -p "$M/var/lib/runner" && touch "$M/var/lib/runner/state.json"
in_root dpkg -P runner
# A removal of something the host has (say /var/lib/runner from a quick-start run as root)
# is a whiteout in the upper layer, a 0:0 character device: that is "gone", not "left".
left=$(cd "$S/upper" && find . -path ./var/lib/dpkg -prune -o -path ./var/log -prune -o -path ./var/cache -prune -o \( -name '*runner*' -o -name 'supervisor.yaml' \) ! -type c -print)
[ -z "$left" ] || fail "left after purge: $left"
echo "ok"
