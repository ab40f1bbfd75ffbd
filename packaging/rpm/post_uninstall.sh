# As %systemd_postun: reload unit files; remove run-time state on erase (RPM has no purge).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 0 ]; then
    rm -rf /var/lib/runner /run/runner
fi
