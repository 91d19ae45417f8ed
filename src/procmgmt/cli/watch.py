"""Repeat a report until interrupted, as ``watch(1)`` does (``status --watch``).

On a terminal each report replaces the last one in place: the cursor goes home
and every line clears what was left of the previous one, so the screen does not
flicker as a full clear does. When the output is a file or a pipe, each report
is printed again after a blank line, so a log of the reports stays readable.
Ctrl-C ends the watch quietly with status 0: stopping to watch is no failure.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import TextIO

#: Cursor home; clear to the end of the line; clear to the end of the screen.
HOME, CLEAR_LINE, CLEAR_REST = "\033[H", "\033[K", "\033[J"


def frame(title: str, report: str, when: float) -> str:
    """One screen: the title and the time, a blank line, the report; each line
    clearing the rest of the old one."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    lines = [f"{title}  {stamp}", "", *report.splitlines()]
    return HOME + "".join(f"{ln}{CLEAR_LINE}\n" for ln in lines) + CLEAR_REST


def watch(report: Callable[[TextIO], int], interval: float, out: TextIO, title: str,
          clock: Callable[[], float] = time.time,
          sleep: Callable[[float], None] = time.sleep, rounds: int | None = None) -> int:
    """Call ``report`` every ``interval`` seconds (``rounds`` times; None: until
    Ctrl-C) and show what it prints on ``out``; 0 when interrupted."""
    redraw = out.isatty()
    done = 0
    try:
        while rounds is None or done < rounds:
            buf = io.StringIO()
            report(buf)
            if redraw:
                out.write(frame(title, buf.getvalue(), clock()))
            else:
                out.write(("\n" if done else "") + buf.getvalue())
            out.flush()
            done += 1
            if rounds is None or done < rounds:
                sleep(interval)
    except KeyboardInterrupt:
        if redraw:
            out.write("\n")
        return 0
    return 0
