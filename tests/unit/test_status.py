"""The status summary, its plurals and exit status, and uptime from /proc."""

from __future__ import annotations

import os
import subprocess
import time

from procmgmt.deploy.status import (
    DOWN,
    RUNNING,
    STOPPED_BY_HAND,
    Row,
    duration,
    exit_status,
    summary,
)
from procmgmt.pids import started_at


def _rows(*states: str) -> list[Row]:
    return [Row(f"p{i}", s, None, None, ()) for i, s in enumerate(states)]


def test_summary_plurals_and_exit_status() -> None:
    """One process / two processes; zero counts after 'up' left out; 3 unless all run."""
    assert summary(_rows(RUNNING)) == "1 process, 1 up"
    assert summary(_rows(RUNNING, STOPPED_BY_HAND)) == "2 processes, 1 up, 1 stopped by hand"
    assert summary(_rows(DOWN, DOWN)) == "2 processes, 0 up, 2 down"
    assert summary([]) == "0 processes, 0 up"
    assert exit_status(_rows(RUNNING, RUNNING)) == 0
    assert exit_status(_rows(RUNNING, STOPPED_BY_HAND)) == 3
    assert exit_status(_rows(DOWN)) == 3


def test_duration() -> None:
    """Compact uptimes."""
    assert [duration(s) for s in (5, 125, 3720, 277200)] == ["5s", "2m05s", "1h02m", "3d05h"]


def test_started_at_of_a_real_process() -> None:
    """A child started now started within a second of the clock, the same value on
    every call (status --json stays comparable); its row's uptime grows; a gone pid
    has none."""
    before = time.time()
    child = subprocess.Popen(["sleep", "30"])
    try:
        first = started_at(child.pid)
        assert first is not None and before - 1.5 <= first <= time.time() + 1.5
        time.sleep(0.2)
        assert started_at(child.pid) == first
        row = Row("c", RUNNING, child.pid, first, ())
        up = row.uptime(now=first + 2.5)
        assert up == 2.5
    finally:
        child.kill()
        child.wait()
    assert started_at(os.getpid()) is not None
    assert started_at(2**22 + 12345) is None
    assert Row("c", DOWN, None, None, ()).uptime() is None
