"""The s6 backend: service directories as rendered, and deployments run for real.

The rendering tests read the generated files; the end-to-end tests (marked
e2e) deploy the webapps example with Debian's s6 through the CLI, as root
with user changes and unprivileged, and check that nothing is left running
afterwards (every process is found by the test's private state dir and
killed by PID if it was)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends.base import Ordering, Support
from procmgmt.deploy.build import RenderResult, evaluate, render
from procmgmt.settings import Settings
from tests import _lanes
from tests.conftest import EXAMPLES, golden_settings
from tests.e2e.util import (
    Runner,
    free_port_block,
    http_get,
    kill_leftovers,
    port_closed,
    wait_no_leftovers,
)

ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"
SIMPLE = EXAMPLES / "webapps" / "processes.py"


def rendered(model: Path, privileged: bool = False,
             extra: dict[str, object] | None = None) -> tuple[RenderResult, Settings]:
    settings = dataclasses.replace(golden_settings(privileged, "s6"), extra_params=extra or {})
    m, specs = evaluate(str(model), settings)
    return render(m, specs, settings, get_backend("s6")), settings


def files(result: RenderResult, name: str) -> dict[str, str]:
    (proc,) = [r for r in result.processes if r.spec.name == name]
    return {f.path.removeprefix(f"s6/{name}/"): f.content or "" for f in proc.files}


def test_capabilities_say_what_the_files_do() -> None:
    caps = get_backend("s6").capabilities
    assert caps.ordering is Ordering.WAITS
    assert caps.readiness is Support.NATIVE
    assert caps.unprivileged


def test_service_directory_waits_for_ready_dependencies() -> None:
    """webapp4 waits for webapp2 and webapp3 to be ready (both notify), starts under
    s6-notifyoncheck, is down until procmgmt starts it, and logs through s6-log."""
    result, settings = rendered(ADVANCED)
    f = files(result, "webapp4")
    assert "if ! s6-svwait -U -t 60000 ../webapp2; then" in f["run"]
    assert "if ! s6-svwait -U -t 60000 ../webapp3; then" in f["run"]
    assert f["run"].rstrip().endswith("./data/start")
    assert "s6-notifyoncheck -d -3 3" in f["run"]
    assert f["notification-fd"] == "3\n"
    assert "procmgmt_ready_tcp 127.0.0.1" in f["data/check"]
    assert f["down"] == ""
    assert f["log/run"].endswith(f"{settings.log_dir}/webapp4\n")
    assert "exec " in f["data/start"]
    assert "s6-svwait" not in files(result, "webapp1")["run"]


def test_daemon_only_process_is_wrapped() -> None:
    """A daemon-only process runs under the proxy, which waits for its pid file;
    s6 sends SIGTERM, which the proxy forwards."""
    result, _ = rendered(SIMPLE, extra={"webapp_mode": "daemon"})
    f = files(result, "webapp")
    assert "procmgmt_pid_file=" in f["data/start"]
    assert f["down-signal"] == "SIGTERM\n"


def test_shellcheck_clean() -> None:
    """Every generated script (run, data/start, data/check, log/run) passes shellcheck."""
    result, _ = rendered(ADVANCED, privileged=True)
    for proc in result.processes:
        for f in proc.files:
            if f.mode & 0o111 and f.content:
                _lanes.assert_lints_clean(f.content, _lanes.SHELLCHECK)


# --------------------------------------------------------------------------- end to end

def _require_s6() -> None:
    if not all(shutil.which(t) for t in ("s6-svscan", "s6-svc", "s6-notifyoncheck")):
        pytest.skip("s6 is not installed")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    """A private state dir; whatever still mentions it afterwards is killed (by PID)
    and fails the test."""
    _require_s6()
    state = tmp_path / "s"
    yield state
    left = wait_no_leftovers(str(state), timeout=5)
    kill_leftovers(str(state))
    assert not left, f"processes left behind: {left}"


def _status(run: Callable[..., subprocess.CompletedProcess[str]]) -> dict[str, dict[str, object]]:
    out = run("status", "--json").stdout
    return {str(p["name"]): p for p in json.loads(out)["processes"]}


@pytest.mark.e2e
def test_webapps_lifecycle_unprivileged(state: Path) -> None:
    """Deploy, stop/start one, upgrade, roll back, undeploy without user changes."""
    base = free_port_block(7)
    run = Runner(state, "s6", json.dumps({"port_base": base}))
    lifecycle(run, state, base, ADVANCED, SIMPLE)


@pytest.mark.e2e
def test_webapps_lifecycle_as_root_with_users() -> None:
    """The same as root with user changes: every webapp runs as its own user (all
    four uids and gids), from a world-readable copy of procmgmt (tests.e2e.test_root)."""
    _require_s6()
    if os.geteuid() != 0:
        pytest.skip("user changes need root")
    from tests.e2e.test_root import assert_runs_as_own_user, root_env

    with root_env("s6") as env:
        def run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
            return env.run(*args, check=check)

        def check_users() -> None:
            assert_runs_as_own_user(env, [f"webapp{i}" for i in range(1, 7)])

        lifecycle(run, env.state, env.base, env.examples / "processes-advanced.py",
                  env.examples / "processes.py", check_users)


def lifecycle(run: Callable[..., subprocess.CompletedProcess[str]], state: Path, base: int,
              advanced: Path, simple: Path, check_users: Callable[[], None] | None = None,
              ) -> None:
    """Deploy the advanced webapps (in dependency order, readiness through
    s6-notifyoncheck), stop and start one, upgrade to the simple model, roll back,
    undeploy: nothing is left, not even s6-svscan."""
    out = run("switch", advanced).stdout
    lines = [ln.split()[1] for ln in out.splitlines() if ln.startswith("ready ")]
    for dep, name in (("webapp1", "webapp2"), ("webapp1", "webapp3"), ("webapp2", "webapp4"),
                      ("webapp3", "webapp4"), ("webapp5", "webapp6")):
        assert lines.index(dep) < lines.index(name), out
    for i in range(1, 7):
        assert f"listening on port: {base + i}" in (http_get(base + i) or "")
    status = _status(run)
    assert all(p["running"] for p in status.values()), status
    if check_users is not None:
        check_users()
    scan = next(state.glob("lib/procmgmt/s6/*/scan"))
    svstat = subprocess.run(["s6-svstat", "-o", "up,ready", str(scan / "webapp4")],
                            capture_output=True, text=True, check=True).stdout.split()
    assert svstat == ["true", "true"], "notified readiness through notification-fd"
    assert not os.stat(scan).st_mode & 0o022
    assert not os.stat(scan / "webapp4" / "supervise").st_mode & 0o077

    pid6 = status["webapp6"]["pid"]
    run("stop", "webapp6")
    assert port_closed(base + 6)
    assert not (scan / "webapp6").exists()
    run("start", "webapp6")
    assert f"listening on port: {base + 6}" in (http_get(base + 6) or "")
    assert _status(run)["webapp6"]["pid"] != pid6

    run("switch", "--replace", simple)
    assert f"listening on port: {base}" in (http_get(base) or "")
    assert port_closed(base + 4)
    run("switch", "--rollback")
    assert f"listening on port: {base + 4}" in (http_get(base + 4) or "")
    assert port_closed(base)

    run("switch", "--undeploy")
    assert wait_no_leftovers(str(state)) == []
    assert sorted(p.name for p in scan.iterdir()) == [".s6-svscan"]
