# As %systemd_post: enable on first install, where systemd runs; nothing where it does not.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl enable --now runner.service >/dev/null 2>&1 || :
    else
        systemctl try-restart runner.service >/dev/null 2>&1 || :
    fi
fi
