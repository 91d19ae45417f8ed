"""The lock held while deciding whether to start a profile's own manager
(supervisord, runsvdir, s6-svscan) and starting it: two procmgmt commands must
never both start one. One rule for every backend that starts its manager."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from procmgmt import fsutil


@contextlib.contextmanager
def start_lock(directory: str, *, enforce: bool = False) -> Iterator[None]:
    """Hold ``directory``/start.lock exclusively. ``enforce`` sets the directory's
    mode again (a directory only procmgmt writes, which a hand may have loosened)."""
    fsutil.ensure_dir(directory, enforce=enforce)
    # 0600: a lock others can open, they can hold (and so block every start).
    fd = fsutil.open_file(os.path.join(directory, "start.lock"), fsutil.PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
