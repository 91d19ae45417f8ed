"""``logs --since T``: which log lines are recent enough, as far as files can tell.

The journal stamps every line, so ``journalctl --since`` is exact. Log files
carry no time per line (procmgmt writes the program's output as it is: readiness
checks and people read those lines), so for files the unit is one file: each
file's modification time is when its last line was written, and the next
older rotated file's (``FILE.1`` for ``FILE``) is about when its first line was.
A file last written before T is left out; the file written across T is shown
whole; every newer one too. With rotation (``--log-max-bytes``) that is at most
one file's worth of lines earlier than T; without it, the one file holds
everything, and a process that still writes shows its whole log.
"""

from __future__ import annotations

import datetime
import os
import re
from collections import deque

from procmgmt.errors import UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhd]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_since(text: str, now: float) -> float:
    """The epoch time ``text`` means: a duration back from ``now`` (``30s``, ``10m``,
    ``2h``, ``1d``, ``1h30m``) or an ISO 8601 time (``2026-12-04T12:00``, local time
    unless it names a zone)."""
    value = text.strip()
    if _DURATION.fullmatch(value):
        return now - sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since: {text!r} is neither a duration (30s, 10m, 2h, 1d) "
                         "nor an ISO time (2026-12-04T12:00:00)") from None
    return when.timestamp()  # a naive time is local time


def rotated_files(path: str) -> list[str]:
    """``path`` and its rotated files (``path.1``, ``path.2``...: supervisord's and the
    rotating writer's names) that exist, oldest first."""
    directory, base = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return [path] if os.path.exists(path) else []
    pattern = re.compile(re.escape(base) + r"\.(\d+)")
    numbered = sorted(((int(m.group(1)), n) for n in names if (m := pattern.fullmatch(n))),
                      reverse=True)
    found = [os.path.join(directory, n) for _, n in numbered]
    return found + ([path] if base in names else [])


def files_since(path: str, since: float) -> list[str]:
    """The files of :func:`rotated_files` that may hold lines written at ``since`` or
    later (last written then or after), oldest first."""
    chosen = []
    for f in rotated_files(path):
        try:
            if os.stat(f).st_mtime >= since:
                chosen.append(f)
        except OSError:
            continue
    return chosen


def lines_since(path: str, since: float, count: int | None) -> tuple[list[str], int]:
    """The lines of :func:`files_since` (the last ``count`` of them; None: all) and the
    size of ``path`` read up to, where following it goes on (its whole size when it
    was last written before ``since``; 0 when it does not exist)."""
    kept: deque[str] = deque(maxlen=count)
    end: int | None = None
    for f in files_since(path, since):
        try:
            with open(f, "rb") as fh:
                for raw in fh:
                    kept.append(raw.rstrip(b"\n").decode(errors="replace").rstrip("\r"))
                if f == path:
                    end = fh.tell()
        except OSError:
            continue
    if end is None:
        try:
            end = os.path.getsize(path)
        except OSError:
            end = 0
    return list(kept), end
