# Sourced by the install scripts: an overlay of / at $S/root ($M) in this private mount
# namespace, with /proc and /dev bound in and fresh tmpfs on /run and /tmp, so nothing the
# package does reaches the host. Needs S set; defines M, in_root and fail.
mount --make-rprivate /
mkdir -p "$S/upper" "$S/work" "$S/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$S/upper,workdir=$S/work" "$S/root"
M="$S/root"
mount --bind /proc "$M/proc"
mount --bind /dev "$M/dev"
mount -t tmpfs tmpfs "$M/run"
mount -t tmpfs tmpfs "$M/tmp"
in_root() { chroot "$M" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
