"""Editing rc.conf(5) as sysrc(8) does: one ``NAME="value"`` line per variable,
written atomically, every other line kept as it is."""

from __future__ import annotations

import os
import re
import tempfile


def _rcvar_line(var: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:export\s+)?{re.escape(var)}=")


def atomic_write(path: str, text: str) -> None:
    """Replace ``path`` by ``text`` atomically, keeping its mode (0644 when new)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=".procmgmt-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read().splitlines(keepends=True)
    except FileNotFoundError:
        return []


def set_rc_conf(path: str, var: str, value: str) -> bool:
    """``sysrc var=value``: replace the first assignment of ``var`` (dropping later
    ones, which would override it) or append one; every other line stays as it
    was. Returns False when the file already said exactly that."""
    lines = _read_lines(path)
    pattern = _rcvar_line(var)
    new_line = f'{var}="{value}"\n'
    out: list[str] = []
    found = False
    for line in lines:
        if pattern.match(line):
            if not found:
                out.append(new_line)
                found = True
            continue
        out.append(line)
    if not found:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(new_line)
    if out == lines:
        return False
    atomic_write(path, "".join(out))
    return True


def unset_rc_conf(path: str, var: str) -> bool:
    """``sysrc -x var``: delete every assignment of ``var``; True if one was there."""
    lines = _read_lines(path)
    pattern = _rcvar_line(var)
    out = [line for line in lines if not pattern.match(line)]
    if out == lines:
        return False
    atomic_write(path, "".join(out))
    return True
