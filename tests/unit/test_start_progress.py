"""The start timeouts of runit and s6 count from the manager's last progress.

A generation's starts go out at once; a manager spawning thousands of
supervisors one after another must not fail the last ones while it is still
picking services up, and one that hangs must still fail them after the
timeout (``procmgmt.backends.shared.supervise_dir.Progress``).
"""

from __future__ import annotations

import pytest

from procmgmt.backends.shared import supervise_dir
from procmgmt.backends.shared.supervise_dir import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(supervise_dir.time, "monotonic", c)
    return c


def test_not_stalled_before_the_deadline(clock: Clock) -> None:
    progress = Progress()
    deadline = clock.now + 30
    clock.now += 29
    assert not progress.stalled(deadline, 30)


def test_a_progressing_manager_keeps_every_start_waiting(clock: Clock) -> None:
    """Past its own deadline, a start waits while other starts went further lately."""
    progress = Progress()
    deadline = clock.now + 30
    for _ in range(10):  # 100 s of a manager picking up one service every 10 s
        clock.now += 10
        progress.note()
        assert not progress.stalled(deadline, 30)


def test_a_manager_that_stopped_progressing_fails_the_start(clock: Clock) -> None:
    progress = Progress()
    deadline = clock.now + 30
    clock.now += 20
    progress.note()  # the last progress, 20 s in
    clock.now += 29.9
    assert not progress.stalled(deadline, 30)
    clock.now += 0.2
    assert progress.stalled(deadline, 30)


def test_no_progress_at_all_fails_at_the_deadline(clock: Clock) -> None:
    progress = Progress()
    deadline = clock.now + 30
    clock.now += 30.1
    assert progress.stalled(deadline, 30)
