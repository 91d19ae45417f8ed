"""Progress of a switch: one line per event, plus a live status line on a terminal.

Not a terminal (a log, CI, a pipe): plain lines only, one per event
(``starting web``, ``ready    web (...)``, ``stopping db``), so output is
easy to grep. On a terminal the same lines scroll by and a status line at
the bottom counts what is starting, ready, stopping and failed, redrawn in
place with ANSI "erase line", so a thousand-process switch shows where it is.
"""

from __future__ import annotations

import io
import threading
from typing import TextIO


class Progress:
    """Event lines and (on a TTY) a live summary."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        try:
            self.live = out.isatty()
        except (AttributeError, ValueError):
            self.live = False
        self.lock = threading.Lock()
        self.counts = {"starting": 0, "ready": 0, "stopping": 0, "stopped": 0, "failed": 0}
        self.shown = False

    def _status(self) -> str:
        c = self.counts
        parts = [f"{c['ready']} ready", f"{c['starting']} starting"]
        if c["stopping"] or c["stopped"]:
            parts.append(f"{c['stopped']} stopped, {c['stopping']} stopping")
        if c["failed"]:
            parts.append(f"{c['failed']} FAILED")
        return "[" + ", ".join(parts) + "]"

    def line(self, text: str) -> None:
        """Print one event line (and redraw the status line under it on a TTY)."""
        with self.lock:
            if self.live:
                self.out.write("\r\x1b[K" + text + "\n" + self._status())
                self.shown = True
            else:
                self.out.write(text + "\n")
            self.out.flush()

    def count(self, kind: str, delta: int = 1) -> None:
        """Adjust a counter (starting/ready/stopping/stopped/failed)."""
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + delta
            if self.live:
                self.out.write("\r\x1b[K" + self._status())
                self.out.flush()
                self.shown = True

    def close(self) -> None:
        """Erase the status line (the event lines stay)."""
        with self.lock:
            if self.live and self.shown:
                self.out.write("\r\x1b[K")
                self.out.flush()
                self.shown = False


class Silent(io.StringIO):
    """An output that keeps nothing: where progress goes when the caller gave no
    stream (the library writes to no terminal of its own accord)."""

    def write(self, s: str) -> int:
        return len(s)
