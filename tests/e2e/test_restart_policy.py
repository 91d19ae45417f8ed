"""``Process.restart`` and ``stop_timeout`` with real processes, per runnable backend.

Model: tests/e2e/models/restarts.py. A process that exits 1 is started again
under on-failure (and one that exits 0 under always), not under no (nor after
exit 0 under on-failure); a process that ignores SIGTERM is killed after its
1-s stop timeout, so the undeploy neither hangs nor leaves it behind.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.util import Runner, kill_leftovers, wait_no_leftovers

pytestmark = pytest.mark.e2e

MODEL = Path(__file__).parent / "models" / "restarts.py"
BACKENDS = ["sysvinit", "supervisord",
            pytest.param("runit", marks=pytest.mark.requires_tool("runsvdir")),
            pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan"))]
#: Seconds to watch: each run lasts 1.5 s, so a restarted process has run at least twice.
WATCH = 5.0


def runs(state: Path, name: str) -> int:
    path = state / f"runs-{name}"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_restart_policies_and_stop_timeout(backend: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = Runner(state, backend, json.dumps({}), cwd=tmp_path)
    try:
        run("switch", MODEL)
        deadline = time.monotonic() + WATCH + 10
        # Wait until the restarting processes ran twice (at most WATCH + 10 s), then
        # long enough that the others would have been restarted too.
        while time.monotonic() < deadline and not (
                runs(state, "on-failure-1") >= 2 and runs(state, "always-0") >= 2):
            time.sleep(0.2)
        time.sleep(WATCH - 3)
        assert runs(state, "on-failure-1") >= 2, "on-failure did not restart after exit 1"
        assert runs(state, "always-0") >= 2, "always did not restart after exit 0"
        assert runs(state, "no-1") == 1, "restart='no' restarted"
        assert runs(state, "on-failure-0") == 1, "on-failure restarted after exit 0"

        started = time.monotonic()
        run("switch", "--undeploy", timeout=60)
        took = time.monotonic() - started
        assert took < 8, f"undeploy took {took:.1f} s: stop_timeout=1 was not honoured"
        assert wait_no_leftovers(str(state), timeout=5) == []
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
