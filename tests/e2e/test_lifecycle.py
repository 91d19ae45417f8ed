"""The original's acceptance scenario, for every runnable backend, with real processes.

deploy processes.py -> both webapps answer; switch to processes-advanced.py ->
the obsolete instance stops, new ones start in dependency order, the unchanged
one keeps its PID; --rollback -> back to the first set; --undeploy -> nothing
answers and no process of ours remains; --delete-all-generations ->
--list-generations prints nothing. Run as this user with user changes disabled
and, when the tests run as root, again as a separate non-root user.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import _lanes
from tests.e2e.util import (
    REPO,
    Runner,
    free_port_block,
    http_get,
    kill_leftovers,
    ordered,
    other_user_tree,
    port_closed,
    start_lines,
    stop_lines,
    wait_http,
    wait_no_leftovers,
)

BACKENDS = ["sysvinit", "supervisord",
            pytest.param("runit", marks=pytest.mark.requires_tool("runsvdir")),
            pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan"))]


def pids(run: Runner) -> dict[str, int | None]:
    """name -> pid from ``procmgmt status --json``."""
    out = run("status", "--json", check=False).stdout
    return {p["name"]: p["pid"] for p in json.loads(out)["processes"]}


def scenario(run: Runner, examples: Path, base: int, marker: str) -> None:
    """Deploy, upgrade, roll back, undeploy, delete generations; assert every step."""
    simple = examples / "webapps" / "processes.py"
    advanced = examples / "webapps" / "processes-advanced.py"

    # 1. deploy
    out = run("switch", simple).stdout
    assert "generation 1 deployed" in out
    assert f"listening on port: {base}" in wait_http(base)
    assert f"listening on port: {base + 1}" in wait_http(base + 1)
    first = pids(run)
    assert first["webapp"] and first["webapp1"]

    # dry run prints the plan and changes nothing
    plan = run("switch", "--dry-run", advanced).stdout
    assert "stop     webapp" in plan and "keep     webapp1" in plan and "start    webapp4" in plan
    assert http_get(base) is not None

    # 2. upgrade
    out = run("switch", "--replace", advanced).stdout
    assert stop_lines(out) == ["webapp"]
    started = start_lines(out)
    assert sorted(started) == [f"webapp{i}" for i in (2, 3, 4, 5, 6)]
    assert ordered(started, "webapp2", "webapp4") and ordered(started, "webapp3", "webapp4")
    assert ordered(started, "webapp5", "webapp6")
    assert port_closed(base)
    for i in range(1, 7):
        assert f"listening on port: {base + i}" in wait_http(base + i)
    second = pids(run)
    assert second["webapp1"] == first["webapp1"], "the unchanged instance was restarted"

    # the same model again: nothing restarts
    out = run("switch", advanced).stdout
    assert start_lines(out) == [] and stop_lines(out) == []
    assert pids(run) == second

    # 3. rollback
    out = run("switch", "--rollback").stdout
    assert "switched to generation 1" in out
    assert sorted(stop_lines(out)) == [f"webapp{i}" for i in (2, 3, 4, 5, 6)]
    assert ordered(stop_lines(out), "webapp4", "webapp2"), "stops must run in reverse order"
    assert start_lines(out) == ["webapp"]
    assert f"listening on port: {base}" in wait_http(base)
    for i in range(2, 7):
        assert port_closed(base + i)
    assert pids(run)["webapp1"] == first["webapp1"]

    # 4. undeploy
    run("switch", "--undeploy")
    for i in range(7):
        assert port_closed(base + i)
    assert wait_no_leftovers(marker) == [], "processes of the deployment are still running"

    # 5. generations
    listing = run("switch", "--list-generations").stdout.splitlines()
    assert len(listing) == 3 and "(current)" in listing[-1]
    run("switch", "--delete-all-generations")
    assert run("switch", "--list-generations").stdout.strip() == ""
    gc = run("gc").stdout
    assert "store entries deleted" in gc


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_lifecycle_current_user(backend: str, tmp_path: Path) -> None:
    """The whole scenario as the user running the tests, user changes disabled."""
    base = free_port_block(7)
    state = tmp_path / "state"
    run = Runner(state, backend, json.dumps({"port_base": base}), cwd=tmp_path)
    try:
        scenario(run, REPO / "examples", base, str(state))
        assert (state / "log").is_dir(), "state directories must stay after undeploy"
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))


@pytest.mark.e2e
@pytest.mark.root("creates a separate user; the current-user test covers the unprivileged case")
@pytest.mark.own_accounts
@pytest.mark.parametrize("backend", BACKENDS)
def test_lifecycle_separate_unprivileged_user(backend: str, tmp_path_factory:
                                              pytest.TempPathFactory) -> None:
    """The same scenario run by a throw-away non-root user the test creates."""
    python = _lanes.require_system_python()
    root = Path("/tmp") / f"procmgmt-e2e-{os.getpid()}-{backend}"
    root.mkdir(mode=0o755)
    try:
        with other_user_tree(root) as (user, tree, pythonpath):
            base = free_port_block(7)
            state = Path(f"/tmp/procmgmt-e2e-state-{os.getpid()}-{backend}")
            state.mkdir(mode=0o755)
            os.chown(state, *_ids(user))
            run = Runner(state, backend, json.dumps({"port_base": base}), python=python,
                         pythonpath=pythonpath, user=user, cwd=tree)
            try:
                scenario(run, tree / "examples", base, str(state))
                for pid in pids(run).values():
                    assert pid is None
            finally:
                run("switch", "--undeploy", check=False)
                kill_leftovers(str(state))
                _rmtree(state)
    finally:
        _rmtree(root)


def _ids(user: str) -> tuple[int, int]:
    import pwd

    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def _rmtree(path: Path) -> None:
    """Remove a tree that contains read-only store entries."""
    import shutil

    if not path.exists():
        return
    for dirpath, _, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(path, ignore_errors=True)
