# Sourced by the install scripts: an overlay of / (with a leftover state dir) at $S/root ($M) in this private mount
# namespace, with /proc and /dev bound in and fresh tmpfs on /run and /tmp, so nothing the
# package does reaches the host. Needs S set; defines M, in_root and fail.
mount --make-rprivate /
mkdir -p "$S/upper" "$S/work" "$S/root"
# Whatever the host has under /var/lib/runner (a quick-start run as root leaves state there)
# must not change the outcome, so every run sees one: a layer above the host's / holding
# such a leftover. /run is a fresh tmpfs below, so the host's /run/runner is never seen.
# (A tmpfs of its own: a lower layer may not be a directory inside another lower layer.)
mkdir -p "$S/leftover"
mount -t tmpfs tmpfs "$S/leftover"
mkdir -p "$S/leftover/var/lib/runner"
echo '{"jobs":{}}' > "$S/leftover/var/lib/runner/state.json"
mount -t overlay overlay -o "lowerdir=$S/leftover:/,upperdir=$S/upper,workdir=$S/work" "$S/root"
M="$S/root"
mount --bind /proc "$M/proc"
mount --bind /dev "$M/dev"
mount -t tmpfs tmpfs "$M/run"
mount -t tmpfs tmpfs "$M/tmp"
in_root() { chroot "$M" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
