"""The pieces an interrupted or failing switch relies on, without real processes.

- ``run_dag(cancel=...)``: once cancelled nothing new begins; stops in
  progress are drained (``drain=True``), readiness waits abandoned
  (``drain=False``); what never finished is listed as cancelled.
- ``errors.storage_error``: a failed file operation names the operation, the
  path and the reason, and for a full disk the space left.
- ``testhooks.fail_point``: fires once per process, only at the named point.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from procmgmt import testhooks
from procmgmt.deploy.scheduler import run_dag
from procmgmt.errors import StorageError, storage, storage_error


def _chain_run(drain: bool) -> tuple[list[str], list[str], list[str]]:
    """a, then b and c (both wait for a); cancelled while a's probe is pending."""
    cancelled = threading.Event()
    began: list[str] = []
    polls = {"a": 0}

    def action(name: str) -> Callable[[], bool] | None:
        began.append(name)
        if name != "a":
            return None

        def probe() -> bool:
            polls["a"] += 1
            cancelled.set()  # the signal arrives while a is pending
            return polls["a"] >= 3

        return probe

    out = run_dag(["a", "b", "c"], {"b": {"a"}, "c": {"a"}}, action, 4,
                  cancel=cancelled.is_set, drain=drain)
    return began, out.done, out.cancelled


def test_cancel_drains_pending_probes() -> None:
    """drain=True (stops): the pending probe is polled to its end; b and c never begin."""
    began, done, cancelled = _chain_run(drain=True)
    assert began == ["a"] and done == ["a"]
    assert sorted(cancelled) == ["b", "c"]


def test_cancel_abandons_pending_probes() -> None:
    """drain=False (starts): the readiness wait is dropped at once and reported."""
    began, done, cancelled = _chain_run(drain=False)
    assert began == ["a"] and done == []
    assert sorted(cancelled) == ["a", "b", "c"]


def test_no_cancel_runs_everything() -> None:
    out = run_dag(["a", "b"], {"b": {"a"}}, lambda name: None, 2, cancel=lambda: False)
    assert out.ok and out.done == ["a", "b"] and out.cancelled == []


def test_storage_error_full_disk_names_space_left(tmp_path: Path) -> None:
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "store" / "x"))
    text = str(storage_error(exc, "write the store entry of web"))
    assert text.startswith(f"cannot write the store entry of web: {tmp_path}/store/x: "
                           "No space left on device (")
    assert " free of " in text and "free some space" in text


def test_storage_error_read_only_and_permission() -> None:
    rofs = storage_error(OSError(errno.EROFS, os.strerror(errno.EROFS)), "write", "/s")
    assert "cannot write: /s: Read-only file system" in str(rofs)
    assert "remount it read-write" in str(rofs)
    denied = storage_error(OSError(errno.EACCES, os.strerror(errno.EACCES), "/p"), "open")
    assert str(denied).startswith("cannot open: /p: Permission denied")


def test_storage_context_converts_only_os_errors(tmp_path: Path) -> None:
    with (pytest.raises(StorageError, match=r"cannot create the directory: .*missing"),
          storage("create the directory", str(tmp_path))):
        os.rmdir(tmp_path / "missing")
    with pytest.raises(ValueError), storage("anything"):
        raise ValueError("not a file error")


def test_fail_point_fires_once_at_its_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(testhooks.FAIL_ENV, "start")
    monkeypatch.setattr(testhooks, "_failed", set())
    testhooks.fail_point("stop")  # another point: nothing
    with pytest.raises(OSError, match=r"injected failure \(PROCMGMT_FAIL_AT=start\)"):
        testhooks.fail_point("start")
    testhooks.fail_point("start")  # once only: the undo passes it again
