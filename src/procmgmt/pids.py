"""Pid files and live processes, read the same way everywhere.

The activators, the readiness checks, ``procmgmt doctor`` and the
supervisord backend all ask "which pid does this file name?" and "is that
process still alive?"; one answer keeps them agreeing with each other and
with the generated scripts.
"""

from __future__ import annotations

import os


def read_pid_file(path: str, *, whole_line: bool = False) -> int | None:
    """The pid on the first line of ``path``, or None when missing or not a plain
    number (no sign, no leading zero).

    Read the way the generated script reads it, so Python and shell agree on
    what counts as a pid: rc.subr takes the first word (the default);
    ``read -r pid`` in the sysvinit scripts takes the whole line
    (``whole_line=True``: ``"123 456"`` is no pid).
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            line = f.readline()
    except OSError:
        return None
    if whole_line:
        first = line.strip()
    else:
        words = line.split()
        first = words[0] if words else ""
    return int(first) if first.isdigit() and not first.startswith("0") else None


def pid_alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a dead process its parent has not reaped)."""
    if pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return True  # no procfs (FreeBSD, macOS by default): kill(0) is all we know
    return not (fields and fields[0] in ("Z", "X"))
