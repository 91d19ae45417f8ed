"""The one place activators run commands: exit status, output, timeout, no poll loop."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from procmgmt.backends import _activation as act


def test_status_and_output_are_returned() -> None:
    result = act.subprocess_runner(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result.returncode == 3
    assert result.output.splitlines() == ["out", "err"]


def test_a_command_that_cannot_run_is_127() -> None:
    result = act.subprocess_runner(["/nonexistent/procmgmt-command"])
    assert result.returncode == 127 and "nonexistent" in result.output


def test_a_command_past_its_timeout_is_killed_and_124(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    t0 = time.monotonic()
    result = act.subprocess_runner(["sh", "-c", f'echo $$ > "{pid_file}"; exec sleep 30'],
                                   timeout=0.5)
    assert result.returncode == act.TIMED_OUT
    assert time.monotonic() - t0 < 10
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left running


def test_wait_exit_wakes_on_the_exit_not_on_a_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Popen.wait(timeout) polls with sleeps of up to 50 ms; wait_exit must not call it
    with a timeout where a pidfd exists (it would add that latency to every start)."""
    if not hasattr(os, "pidfd_open"):
        pytest.skip("no pidfd on this platform: Popen.wait is the way there")
    proc = subprocess.Popen(["sh", "-c", "exit 7"])
    real_wait = subprocess.Popen.wait
    timeouts: list[float | None] = []

    def wait(self: subprocess.Popen[bytes], timeout: float | None = None) -> int:
        timeouts.append(timeout)
        return real_wait(self, timeout)

    monkeypatch.setattr(subprocess.Popen, "wait", wait)
    assert act.wait_exit(proc, 30) == 7
    assert timeouts == [None], "reaped once the pidfd said it exited"


def test_wait_exit_times_out() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            act.wait_exit(proc, 0.2)
    finally:
        proc.kill()
        proc.wait()
