"""The ``supervise/`` directory runit's runsv and s6's s6-supervise both keep (the
daemontools layout): a status file read without following symlinks, and a
``control`` FIFO that takes one-letter commands. One copy for both backends:
each decodes its own status format on top of :func:`read_regular`.
"""

from __future__ import annotations

import errno
import os
import stat
import time


def read_regular(path: str, limit: int) -> bytes | None:
    """Up to ``limit`` bytes of the regular file ``path``; None when it is missing,
    a symlink or not a regular file (root reads it; the directory may not be root's)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit)
    finally:
        os.close(fd)


def open_control(service_dir: str) -> int | None:
    """A write descriptor of ``service_dir``'s control FIFO, None when no supervisor
    reads it (or it is missing, a symlink, not a FIFO)."""
    path = os.path.join(service_dir, "supervise", "control")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def send(service_dir: str, commands: str) -> bool:
    """Write ``commands`` (the supervisor's letters) to its control FIFO; False when
    none listens (also when it exited between the open and the write)."""
    fd = open_control(service_dir)
    if fd is None:
        return False
    try:
        os.set_blocking(fd, True)  # as s6-svc and sv: a full FIFO waits, it does not fail
        os.write(fd, commands.encode("ascii"))
    except BrokenPipeError:
        return False
    finally:
        os.close(fd)
    return True


class Progress:
    """When a supervisor of this manager last took a start further (picked it up, or
    reported it running): the start timeouts of a generation count from there.

    A generation's starts now go out at once, so each one's timeout began at the
    same moment, while the manager spawns thousands of supervisors one after
    another (6,675 services took s6-svscan most of 30 s on 2 busy cores, and the
    last ones failed a switch that was progressing). A start fails once its own
    timeout has passed *and* nothing of the manager progressed for as long: a
    manager that hangs still fails the switch after the timeout, a slow one does
    not."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def note(self) -> None:
        """A start went further (the monotonic clock's now)."""
        self.last = time.monotonic()

    def stalled(self, deadline: float, timeout: float) -> bool:
        """Past ``deadline``, and no progress for ``timeout`` seconds."""
        now = time.monotonic()
        return now > deadline and now > self.last + timeout
