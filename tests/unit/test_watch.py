"""``status --watch``: reports redrawn in place on a terminal, repeated otherwise,
Ctrl-C ending it with status 0."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TextIO

from procmgmt.cli.watch import CLEAR_LINE, CLEAR_REST, HOME, watch


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _counting() -> tuple[list[int], Callable[[TextIO], int]]:
    calls: list[int] = []

    def report(out: TextIO) -> int:
        calls.append(len(calls))
        print(f"report {len(calls)}\nline two", file=out)
        return 3

    return calls, report


def test_not_a_terminal_prints_each_report_again_after_a_blank_line() -> None:
    out = io.StringIO()
    _, report = _counting()
    slept: list[float] = []
    assert watch(report, 0.5, out, "t", sleep=slept.append, rounds=3) == 0
    assert out.getvalue() == ("report 1\nline two\n\nreport 2\nline two\n\n"
                              "report 3\nline two\n")
    assert slept == [0.5, 0.5]
    assert "\033" not in out.getvalue()


def test_a_terminal_gets_frames_redrawn_in_place() -> None:
    out = Tty()
    _, report = _counting()
    watch(report, 1, out, "every 1s", clock=lambda: 0.0, sleep=lambda s: None,
          rounds=2)
    frames = out.getvalue().split(HOME)[1:]
    assert len(frames) == 2
    assert frames[1].startswith("every 1s  ")
    assert f"report 2{CLEAR_LINE}\nline two{CLEAR_LINE}\n{CLEAR_REST}" in frames[1]


def test_ctrl_c_ends_quietly_with_status_0() -> None:
    out = io.StringIO()
    calls, report = _counting()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    assert watch(report, 1, out, "t", sleep=interrupted) == 0
    assert len(calls) == 1 and out.getvalue() == "report 1\nline two\n"
