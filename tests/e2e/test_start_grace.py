"""``switch --start-grace``: how long a process without a readiness check must stay
alive to count as started, honoured by the engine on every runnable backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.util import Runner, kill_leftovers

pytestmark = pytest.mark.e2e

MODEL = Path(__file__).parent / "models" / "short_lived.py"
BACKENDS = ["sysvinit", "supervisord",
            pytest.param("runit", marks=pytest.mark.requires_tool("runsvdir")),
            pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan"))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_process_dying_within_the_grace_fails_the_switch(backend: str,
                                                          tmp_path: Path) -> None:
    """It runs 1 s: a 3-s grace sees it die (the switch fails, nothing stays), the
    default 0.2 s and 0 count it started."""
    state = tmp_path / "state"
    run = Runner(state, backend, json.dumps({}), cwd=tmp_path)
    try:
        failed = run("switch", "--start-grace", "3", MODEL, check=False)
        assert failed.returncode != 0, failed.stdout + failed.stderr
        assert "brief" in failed.stderr and "exit" in failed.stderr, failed.stderr
        run("switch", "--start-grace", "0", MODEL)
        run("switch", "--undeploy")
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
