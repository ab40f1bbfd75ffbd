#!/usr/bin/python3
"""A FUSE file system that holds lookups: `python3 hold.py MOUNTPOINT STATE_DIR`.

The root is an empty directory that answers at once; a lookup of anything under it (a
`chdir` into MOUNTPOINT/held) is held until STATE_DIR/release exists, and STATE_DIR/asked
is written when the first one arrives. STATE_DIR/ready is written once mounted.
Multi-threaded, so the root keeps answering while a lookup is held. Needs fusepy
(Debian: python3-fusepy, on libfuse2)."""

import errno
import os
import stat
import sys
import time

try:
    from fusepy import FUSE, FuseOSError, Operations
except ImportError:
    from fuse import FUSE, FuseOSError, Operations

mountpoint, state = sys.argv[1], sys.argv[2]


def mark(name):
    with open(os.path.join(state, name), "w") as f:
        f.write(str(os.getpid()))


class Hold(Operations):
    def init(self, path):
        mark("ready")

    def getattr(self, path, fh=None):
        now = time.time()
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_ctime=now, st_mtime=now, st_atime=now)
        if not os.path.exists(os.path.join(state, "asked")):
            mark("asked")
        while not os.path.exists(os.path.join(state, "release")):
            time.sleep(0.05)
        if path == "/held":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_ctime=now, st_mtime=now, st_atime=now)
        raise FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        return [".", "..", "held"] if path == "/" else [".", ".."]


FUSE(Hold(), mountpoint, foreground=True, nothreads=False, allow_other=True)
