"""The supervisord activator's shared process table (control.Snapshot), against a
fake fetch: :meth:`~control.Snapshot.poll` never waits, one background fetch
serves every caller whose requirement is older than its request, a caller who
needs a newer table gets one after the fetch in flight, a failed fetch
reaches the callers it should have served, and no thread stays behind; the
activator's status checks the pid the (maybe old) table reports."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from procmgmt.backends.supervisord import SupervisordActivator, control
from procmgmt.manifest import DeployedProcess, Generation
from tests.backends._helpers import tmp_settings


class FakeTable:
    """Counts fetches; each waits for ``gate`` (when given) before answering."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.fetches = 0
        self.error: Exception | None = None
        self.state = "RUNNING"

    def __call__(self) -> list[dict[str, Any]]:
        self.fetches += 1
        if self.gate is not None:
            assert self.gate.wait(5)
        if self.error is not None:
            raise self.error
        return [{"name": "a", "group": "a", "statename": self.state},
                {"name": "b", "group": "b", "statename": self.state}]


def _until(snap: control.Snapshot, after: float) -> tuple[dict[str, dict[str, Any]], float]:
    deadline = time.monotonic() + 5
    while True:
        got = snap.poll(after)
        if got is not None:
            return got
        assert time.monotonic() < deadline, "no table within 5 s"
        time.sleep(0.005)


def _wait_idle() -> None:
    deadline = time.monotonic() + 5
    while any(t.name == "supervisord-table" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the fetching thread stayed"
        time.sleep(0.01)


def test_poll_does_not_wait_and_one_fetch_serves_everyone_before_it() -> None:
    gate = threading.Event()
    fetch = FakeTable(gate)
    snap = control.Snapshot(fetch)
    before = time.monotonic()
    t0 = time.monotonic()
    assert [snap.poll(before) for _ in range(50)] == [None] * 50
    assert time.monotonic() - t0 < 1, "poll waited for the fetch"
    gate.set()
    infos, at = _until(snap, before)
    assert at > before and infos["a"]["statename"] == "RUNNING"
    assert snap.poll(before) == (infos, at)
    assert fetch.fetches == 1
    _wait_idle()


def test_a_newer_requirement_gets_a_newer_table() -> None:
    fetch = FakeTable()
    snap = control.Snapshot(fetch, min_age=0)
    _, first = _until(snap, time.monotonic())
    fetch.state = "STOPPED"
    infos, second = _until(snap, first)
    assert second > first and infos["b"]["statename"] == "STOPPED"
    assert fetch.fetches == 2
    _wait_idle()


def test_invalidate_makes_the_next_poll_fetch() -> None:
    fetch = FakeTable()
    snap = control.Snapshot(fetch, min_age=0)
    start = time.monotonic()
    _until(snap, start)
    snap.invalidate()
    assert snap.poll(start) is None
    _until(snap, start)
    assert fetch.fetches == 2
    _wait_idle()


def test_a_failed_fetch_reaches_the_callers_it_served_and_a_later_one_retries() -> None:
    fetch = FakeTable()
    fetch.error = ConnectionRefusedError(111, "Connection refused")
    snap = control.Snapshot(fetch, min_age=0)
    start = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        _until(snap, start)
    fetch.error = None
    _until(snap, time.monotonic())
    assert fetch.fetches == 2
    _wait_idle()


def test_get_blocks_and_reuses_a_young_table() -> None:
    fetch = FakeTable()
    snap = control.Snapshot(fetch, min_age=10)
    infos, at = snap.get()
    assert infos["a"]["statename"] == "RUNNING"
    assert snap.get() == (infos, at)
    assert fetch.fetches == 1
    snap.get(newer_than=time.monotonic())
    assert fetch.fetches == 2


def test_status_counts_a_reported_pid_that_has_exited_as_not_running(tmp_path: Path) -> None:
    """The table says RUNNING, but the pid has exited since (supervisord has not
    looked yet): not running. A live pid is running."""
    import subprocess

    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    act = SupervisordActivator(tmp_settings(tmp_path, manager="supervisord"))
    table = {"a": dead.pid, "b": os.getpid()}
    act._snapshot = control.Snapshot(lambda: [
        {"name": n, "group": n, "statename": "RUNNING", "pid": pid} for n, pid in table.items()])
    gen = Generation("supervisord", "", ())

    def proc(name: str) -> DeployedProcess:
        return DeployedProcess(name=name, hash="h", path="/nonexistent", rank=0)

    gone = act.status(gen, proc("a"))
    assert not gone.running and "has exited" in gone.detail
    assert act.status(gen, proc("b")).running
