# As %systemd_preun: stop and disable on removal (not on upgrade).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now runner.service >/dev/null 2>&1 || :
fi
