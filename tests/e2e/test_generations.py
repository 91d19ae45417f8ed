"""Generations told apart, with real processes on sysvinit and supervisord.

A second model file is refused without --replace and nothing changes (same
PIDs, same generations); --diff shows what the switch would do and deploys
nothing; --list-generations, graph and analyze work on what is deployed;
rollback and undeploy need no --replace; bash completes the deployed names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.util import (
    REPO,
    Runner,
    free_port_block,
    kill_leftovers,
    port_closed,
    wait_http,
)

BACKENDS = ["sysvinit", "supervisord"]
SIMPLE = REPO / "examples" / "webapps" / "processes.py"
ADVANCED = REPO / "examples" / "webapps" / "processes-advanced.py"


def pids(run: Runner) -> dict[str, int | None]:
    out = run("status", "--json", check=False).stdout
    return {p["name"]: p["pid"] for p in json.loads(out)["processes"]}


def bash_names(run: Runner, state: Path, prefix: str) -> list[str]:
    """What bash completion offers for ``procmgmt restart --state-dir STATE PREFIX``."""
    bindir = os.path.dirname(sys.executable)
    script = run("completion", "bash").stdout
    code = (f"{script}\nCOMP_WORDS=(procmgmt restart --state-dir {state} {prefix}); "
            'COMP_CWORD=4; _procmgmt; printf "%s\\n" "${COMPREPLY[@]}"')
    proc = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"},
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return sorted(proc.stdout.split())


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_generations_told_apart(backend: str, tmp_path: Path) -> None:
    base = free_port_block(7)
    state = tmp_path / "state"
    run = Runner(state, backend, json.dumps({"port_base": base}), cwd=tmp_path)
    try:
        run("switch", SIMPLE)
        wait_http(base)
        first = pids(run)

        refused = run("switch", ADVANCED, check=False)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert str(SIMPLE) in refused.stderr and str(ADVANCED) in refused.stderr
        assert "--replace" in refused.stderr
        assert pids(run) == first and port_closed(base + 2)
        assert len(run("switch", "--list-generations").stdout.splitlines()) == 1

        diff = run("switch", "--diff", ADVANCED)
        assert "  removed  webapp" in diff.stdout and "  added    webapp4" in diff.stdout
        assert "1 unchanged: webapp1" in diff.stdout and "--replace" in diff.stderr
        assert pids(run) == first and port_closed(base + 4)

        run("switch", "--replace", ADVANCED)
        for i in range(1, 7):
            wait_http(base + i)
        assert pids(run)["webapp1"] == first["webapp1"]
        listing = run("switch", "--list-generations").stdout.splitlines()
        assert len(listing) == 2 and "(current)" in listing[1]
        assert f" {backend} " in listing[1] and "6 processes" in listing[1]
        assert listing[1].endswith("added webapp2, webapp3, webapp4, webapp5, webapp6; "
                                   "removed webapp")

        graph = run("graph").stdout
        assert '"webapp4" -> "webapp2";' in graph and '"webapp6" -> "webapp5";' in graph
        chain = run("analyze", "critical-chain").stdout
        assert f"current generation 2 ({backend}, 6 processes)" in chain
        assert bash_names(run, state, "webapp") == [f"webapp{i}" for i in range(1, 7)]

        # Rollback and undeploy move between models without --replace.
        run("switch", "--rollback")
        wait_http(base)
        assert port_closed(base + 4)
        run("switch", SIMPLE)  # the model of the current generation again
        run("switch", "--undeploy")
        assert port_closed(base) and port_closed(base + 1)
        run("switch", ADVANCED)  # nothing runs: nothing to replace
        wait_http(base + 6)
        gens = json.loads(run("switch", "--list-generations", "--json").stdout)
        assert [g["processes"] for g in gens] == [2, 6, 0, 6]
        assert gens[-1]["current"] and gens[-1]["model"] == str(ADVANCED)
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
