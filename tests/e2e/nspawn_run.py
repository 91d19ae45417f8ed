"""Host side of a container run: boot a scenario, fail clearly if it did not finish, clean up.

Shared by the systemd test modules (each boots once per module). Kept apart
from :mod:`tests.e2e.systemd_nspawn`, which also runs inside the container
where pytest is not importable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import systemd_nspawn as ns

REPO = Path(__file__).resolve().parent.parent.parent


@contextlib.contextmanager
def booted_scenario(config: dict[str, Any], prefix: str) -> Iterator[ns.BootResult]:
    """Boot the container with ``config``; the result of a scenario that finished."""
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    scratch = Path(tempfile.mkdtemp(prefix=f"{prefix}-root-"))
    try:
        ns.prepare_work_dir(work, REPO, config)
        result = ns.boot(work, scratch)
        log = work / "results" / "scenario.log"
        if not result.done:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
            pytest.fail(f"the scenario did not finish (rc {result.returncode}, "
                        f"{result.seconds:.1f} s)\nconsole tail:\n{result.console[-3000:]}\n"
                        f"scenario log tail:\n{tail}")
        yield result
    finally:
        if os.environ.get("PROCMGMT_KEEP_NSPAWN_WORK"):  # debugging: keep scenario.log
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def assert_checks(result: ns.BootResult, names: list[str]) -> None:
    """Every named check reported and passed."""
    failed = [n for n in names if not result.results.get(n, {}).get("ok")]
    # A failed switch explains the failures after it: its output first and whole,
    # the others shortened (a report is cut after a few thousand characters).
    first = sorted(failed, key=lambda n: not n.endswith(".rc"))
    assert not failed, "\n".join(
        f"{n}: {result.describe(n) if n.endswith('.rc') else result.describe(n)[:600]}"
        for n in first)
