"""Being told that a file changed instead of polling it: Linux inotify, via ctypes.

A log-line readiness check otherwise rereads its log file on a timer, and
the dependents of the process wait for the next tick (20 ms per level of a
dependency chain). One :class:`FileWatch` (one inotify instance, one file
descriptor for the scheduler to wait on) watches the *directories* of many
files: a directory watch also sees a file that does not exist yet being
created, and the usual layout (every log in one directory) costs one watch.

Everything here is a hint, never the truth: the check still reads the file,
and the scheduler still asks it on a slower timer, so an event that is lost
(a queue overflow, a file written through another mount, a bind mount)
costs latency, not correctness. Where inotify is missing (not Linux, no
libc, the per-user instance limit reached) :meth:`FileWatch.open` returns
None and the caller polls as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import sys
import threading

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
#: What changes a file in a watched directory: appended to, rewritten, created, renamed in.
DIR_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
EVENT = struct.Struct("iIII")


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


class FileWatch:
    """One inotify instance for many files; thread-safe (watches are added by the
    workers that start processes, events read by the scheduler's thread)."""

    def __init__(self, fd: int, libc: ctypes.CDLL) -> None:
        self.fd = fd
        self._libc = libc
        self._lock = threading.Lock()
        #: directory watch descriptor -> the directory
        self._dirs: dict[str, int] = {}
        #: (watch descriptor, file name) -> how many events it has had
        self._counts: dict[tuple[int, str], int] = {}
        #: Bumped when the kernel dropped events: every file may have changed.
        self._overflows = 0

    @classmethod
    def open(cls) -> FileWatch | None:
        """A new watcher, or None where inotify cannot be had (then poll)."""
        libc = _libc()
        if libc is None:
            return None
        try:
            init1 = libc.inotify_init1
        except AttributeError:
            return None
        fd = init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            return None
        return cls(fd, libc)

    def fileno(self) -> int:
        """The descriptor that becomes readable when a watched file changed."""
        return self.fd

    def watch(self, path: str) -> PathWatch | None:
        """Start watching ``path`` (through its real directory, so a symlinked log
        directory is watched where the writes happen); None when its directory
        cannot be watched (missing, another filesystem without inotify, limits)."""
        real = os.path.realpath(path)
        directory, name = os.path.split(real)
        with self._lock:
            wd = self._dirs.get(directory)
            if wd is None:
                wd = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), DIR_MASK)
                if wd < 0:
                    return None
                self._dirs[directory] = wd
            return PathWatch(self, (wd, name))

    def drain(self) -> None:
        """Read every pending event and count it against its file. The scheduler calls
        this once per wake-up, before it asks the checks: a check that drained the
        queue itself could swallow the event of a check asked just before it."""
        with self._lock:
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # closed under us: the scheduler's timer takes over
            if not data:
                return
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _cookie, size = EVENT.unpack_from(data, offset)
                raw = data[offset + EVENT.size:offset + EVENT.size + size]
                offset += EVENT.size + size
                if mask & IN_Q_OVERFLOW:
                    self._overflows += 1
                    continue
                key = (wd, os.fsdecode(raw.rstrip(b"\0")))
                self._counts[key] = self._counts.get(key, 0) + 1

    def _seen(self, key: tuple[int, str]) -> tuple[int, int]:
        with self._lock:
            return self._counts.get(key, 0), self._overflows

    def close(self) -> None:
        """Stop watching (the descriptor is closed once)."""
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


class PathWatch:
    """One file of a :class:`FileWatch`: did it change since I last asked?"""

    def __init__(self, owner: FileWatch, key: tuple[int, str]) -> None:
        self._owner = owner
        self._key = key
        self._last = (0, 0)

    def fileno(self) -> int:
        """The shared descriptor of the watcher."""
        return self._owner.fileno()

    def drain(self) -> None:
        """Read the watcher's pending events (for every file it watches)."""
        self._owner.drain()

    def changed(self) -> bool:
        """True when the file (or, after an overflow, possibly any file) had an
        event since the previous call, among the events drained so far."""
        now = self._owner._seen(self._key)
        if now == self._last:
            return False
        self._last = now
        return True


__all__ = ["FileWatch", "PathWatch"]
