"""``doctor``'s strays: what vanished or changed since the /proc scan is left alone.

A deployed process's short-lived child (a shell loop's ``sleep``) carries the
deployment marker too: found by the scan, it may be gone a moment later, and
its pid may even be reused before ``doctor --stop`` signals it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.deploy import doctor
from procmgmt.settings import Settings, resolve


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _settings(tmp_path: Path) -> Settings:
    return resolve({"state_dir": str(tmp_path / "s"), "process_manager": "sysvinit"}, {})


def _gone_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_marked_process_gone_since_the_scan_is_no_stray(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sleeper: subprocess.Popen[bytes]) -> None:
    gone = _gone_pid()
    monkeypatch.setattr(doctor, "marked_processes",
                        lambda settings: {gone: "svc", sleeper.pid: "other"})
    strays = doctor.find_strays(_settings(tmp_path), None, None)
    assert [(s.pid, s.process) for s in strays] == [(sleeper.pid, "other")]


def test_stop_leaves_a_pid_whose_command_line_changed(
        sleeper: subprocess.Popen[bytes]) -> None:
    """The pid now runs something else (reused): not signalled."""
    reused = doctor.Stray(sleeper.pid, "svc", "/bin/sh -c loop")
    assert doctor.stop_strays([reused], timeout=0.2) == []
    assert sleeper.poll() is None, "a process that is no longer the stray was signalled"
    found = doctor.Stray(sleeper.pid, "svc", "sleep 60")
    assert doctor.stop_strays([found], timeout=5) == []
    assert sleeper.wait(timeout=5) != 0
