"""One stream of the output of several processes, each line prefixed with its name.

Where a process's output is kept is the backend's business
(:meth:`~procmgmt.backends.base.Activator.log_source`): files the script or
supervisord appends to, or systemd's journal. This module reads either kind
the same way: the last ``lines`` lines of each process, then, when following,
every new line as it is written.

Following survives restarts: a restarted process appends to the same file
(sysvinit, supervisord), a file replaced by another one (log rotation, a
file deleted and created again) is reopened from its start, and a truncated
file is read again from its start. A file that does not exist yet is
waited for.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Sequence
from typing import BinaryIO, TextIO

from procmgmt.backends.base import LogSource
from procmgmt.deploy.logtime import lines_since

#: Seconds between two looks at the followed files.
POLL_INTERVAL = 0.1
#: ANSI colours of the name prefixes, one per process in turn (as honcho does).
COLOURS = ("36", "33", "32", "35", "31", "34", "96", "93", "92", "95", "91", "94")


class Printer:
    """Writes prefixed lines, one at a time (several journal readers write at once)."""

    def __init__(self, out: TextIO, names: Sequence[str], colour: bool) -> None:
        self.out = out
        self.width = max((len(n) for n in names), default=0)
        self.colours = {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(names)}
        self.colour = colour
        self.lock = threading.Lock()

    def prefix(self, name: str) -> str:
        """``name |`` padded to the longest name, coloured when asked for."""
        text = f"{name:<{self.width}} |"
        return f"\033[{self.colours.get(name, '0')}m{text}\033[0m" if self.colour else text

    def lines(self, name: str, lines: Sequence[str]) -> None:
        """Print ``lines`` of ``name``."""
        if not lines:
            return
        head = self.prefix(name)
        with self.lock:
            for line in lines:
                self.out.write(f"{head} {line}\n")
            self.out.flush()


def _decode(raw: bytes) -> str:
    return raw.decode(errors="replace").rstrip("\r")


def last_lines(path: str, count: int) -> tuple[list[str], int]:
    """The last ``count`` lines of ``path`` (a last line without its newline too) and
    the size read up to; ``([], 0)`` when the file does not exist."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            if count <= 0:
                return [], end
            pos, data = end, b""
            while pos > 0 and data.count(b"\n") <= count:
                step = min(65536, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return [], 0
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [_decode(ln) for ln in lines[-count:]], end


class FileFollower:
    """Follows one file across replacement and truncation."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.offset = 0
        self._file: BinaryIO | None = None
        self._ident: tuple[int, int] | None = None
        self._partial = b""

    def _open(self, offset: int) -> BinaryIO | None:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - kept open while following
        except OSError:
            return None
        st = os.fstat(f.fileno())
        self.close()
        self._file, self._ident = f, (st.st_dev, st.st_ino)
        self.offset = min(offset, st.st_size)
        f.seek(self.offset)
        return f

    def start(self, offset: int) -> None:
        """Begin at ``offset`` (the end of what was already shown)."""
        self._open(offset)

    def poll(self) -> list[str]:
        """Complete lines written since the last poll."""
        f = self._file or self._open(0)
        if f is None:
            return []  # not there yet
        try:
            now = os.stat(self.path)
            replaced = (now.st_dev, now.st_ino) != self._ident
        except OSError:
            replaced = False  # gone for now: finish the old one, wait for a new one
        if os.fstat(f.fileno()).st_size < self.offset:  # truncated: again from the start
            f.seek(0)
            self.offset, self._partial = 0, b""
        out = self._read(f)
        if replaced:
            if self._partial:
                out.append(_decode(self._partial))
                self._partial = b""
            new = self._open(0)
            if new is not None:
                out += self._read(new)
        return out

    def _read(self, f: BinaryIO) -> list[str]:
        data = f.read()
        if not data:
            return []
        self.offset += len(data)
        parts = (self._partial + data).split(b"\n")
        self._partial = parts.pop()
        return [_decode(p) for p in parts]

    def close(self) -> None:
        """Release the file."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = None


def journal_command(args: Sequence[str], count: int | None, follow: bool,
                    since: float | None = None) -> list[str]:
    """``journalctl`` printing the messages only, for the units ``args`` select: the
    last ``count`` lines (None: all), those since the epoch time ``since`` if given."""
    return ["journalctl", *args, "--output=cat", "--no-pager",
            f"--lines={'all' if count is None else count}",
            *([f"--since=@{int(since)}"] if since is not None else []),
            *(["--follow"] if follow else [])]


def stream(sources: Sequence[tuple[str, LogSource]], count: int | None, follow: bool,
           printer: Printer, stop: threading.Event | None = None,
           since: float | None = None) -> None:
    """Print the last ``count`` lines of every source (None: all of them; with ``since``,
    of those written since then, see :mod:`procmgmt.deploy.logtime`), then
    (``follow``) new lines until ``stop`` is set or the caller is interrupted."""
    stop = stop or threading.Event()
    followers: list[FileFollower] = []
    children: list[subprocess.Popen[bytes]] = []
    threads: list[threading.Thread] = []
    try:
        for name, source in sources:
            for path in source.files:
                if since is None and count is not None:
                    lines, end = last_lines(path, count)
                else:
                    lines, end = lines_since(path, since or 0.0, count)
                printer.lines(name, lines)
                if follow:
                    follower = FileFollower(name, path)
                    follower.start(end)
                    followers.append(follower)
            if source.journal:
                child = subprocess.Popen(journal_command(source.journal, count, follow, since),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
                children.append(child)
                if follow:
                    t = threading.Thread(target=_pump, args=(child, name, printer), daemon=True)
                    t.start()
                    threads.append(t)
                else:
                    _pump(child, name, printer)
        while follow:
            for f in followers:
                printer.lines(f.name, f.poll())
            if stop.is_set():
                break  # after a last look: what was written before ``stop`` is shown
            stop.wait(POLL_INTERVAL)
    finally:
        for f in followers:
            f.close()
        for child in children:
            if child.poll() is None:
                child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)


def _pump(child: subprocess.Popen[bytes], name: str, printer: Printer) -> None:
    assert child.stdout is not None
    for raw in child.stdout:
        printer.lines(name, [_decode(raw.rstrip(b"\n"))])
    child.wait()

