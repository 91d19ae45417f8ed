"""Every failure point of a switch, then the profile is never stuck.

``PROCMGMT_FAIL_AT=<point>`` (``procmgmt.testhooks``) makes a switch raise an
I/O error the first time it reaches that point: the store write of the build,
account creation, the backend's setup (``prepare``), the manager rereading its
program files (supervisord's ``reloadConfig``; sysvinit has none), a stop, a
start, a readiness check, the backend's ``finish`` and recording the new
generation. Generation 1 is ``examples/webapps/processes.py``; the failing
switch goes to ``processes-advanced.py`` (stop ``webapp``, keep ``webapp1``,
start webapp2..6), so every point is reached with real work behind it.

After each failure: exit 1 naming the injected fault, no journal left,
generation 1 current and all that runs (read from ``/proc``), answering over
HTTP. Then ``switch processes-advanced.py``, ``repair`` and ``switch
--undeploy`` all succeed, on sysvinit and supervisord.

Then the two profiles the issue found stuck, each with a generation whose
backend or files can never work:

- a non-root ``switch -P systemd`` after a supervisord deployment (systemd's
  system manager needs root);
- a supervisord program file supervisord refuses to read (a ``user=`` that
  does not exist, given as a native override, which no validation of procmgmt
  can judge: the file reaches the manager), after a failed switch, a crash
  before the reload and a ``--no-rollback``.

And a repair that cannot restore: it says what is left and ``repair
--abandon`` gets the profile going again without deleting any file by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from procmgmt.testhooks import CRASH_ENV, FAIL_ENV, FAIL_POINTS
from tests.e2e.util import REPO, free_port_block
from tests.faults import (
    ADVANCED,
    ADVANCED_PORTS,
    MODELS,
    PROFILE,
    SIMPLE,
    SIMPLE_PORTS,
    Cli,
    assert_generations_consistent,
    assert_serves,
    assert_silent,
    cleanup,
    marked,
    running_pids,
    wait_marked_names,
)

#: Points that do not exist for a backend (sysvinit: no manager reads program files).
NOT_REACHED = {"sysvinit": {"reload"}}
CASES = [pytest.param(backend, point, id=f"{backend}-{point}")
         for backend in ("sysvinit", "supervisord") for point in FAIL_POINTS
         if point not in NOT_REACHED.get(backend, set())]
#: Points before the first change of what runs: nothing may be touched at all.
BEFORE_ANY_CHANGE = {"build", "accounts", "files"}
ADVANCED_ONLY = {n: o for n, o in ADVANCED_PORTS.items() if n not in SIMPLE_PORTS}
GONE = {n: o for n, o in SIMPLE_PORTS.items() if n not in ADVANCED_PORTS}


def journal(state: Path) -> Path:
    """The journal of an in-flight switch of the test profile."""
    return state / "lib" / "procmgmt" / "profiles" / f"{PROFILE}.journal"


def assert_not_stuck(run: Cli, state: Path, base: int) -> None:
    """switch GOOD, repair and switch --undeploy all succeed (fresh processes)."""
    good = run("switch", "--replace", ADVANCED, fresh=True)
    assert "deployed" in good.stdout, good.stdout + good.stderr
    assert_serves(base, ADVANCED_PORTS)
    assert wait_marked_names(run.state, set(ADVANCED_PORTS)) == set(ADVANCED_PORTS)
    rep = run("repair", fresh=True)
    assert "nothing to repair" in rep.stdout, rep.stdout + rep.stderr
    undeploy = run("switch", "--undeploy", fresh=True)
    assert "deployed" in undeploy.stdout, undeploy.stdout + undeploy.stderr
    assert wait_marked_names(state, set()) == set(), marked(state)
    assert not journal(state).exists()


@pytest.mark.e2e
@pytest.mark.parametrize(("backend", "point"), CASES)
def test_fail_point(backend: str, point: str, tmp_path: Path) -> None:
    """A failure at ``point``: exit 1, the error named, generation 1 back and current,
    no journal; afterwards nothing is stuck."""
    base = free_port_block(7)
    state = tmp_path / "state"
    run = Cli(state, backend, {"port_base": base}, cwd=tmp_path)
    try:
        run("switch", SIMPLE)
        before = running_pids(run)
        failed = run("switch", "--replace", ADVANCED, check=False, fresh=True,
                     env={FAIL_ENV: point})
        out = failed.stdout + failed.stderr
        assert failed.returncode == 1, out
        assert f"injected failure ({FAIL_ENV}={point})" in failed.stderr, out
        assert "Traceback" not in out and "internal error" not in out, out
        assert not journal(state).exists(), f"a journal was left behind:\n{out}"
        if point == "build":
            assert "cannot write the store entry" in failed.stderr, out
        if point in BEFORE_ANY_CHANGE:
            assert "restoring" not in failed.stdout and "stopping" not in failed.stdout, out
        else:
            assert "the previous generation was restored" in failed.stderr, out
        assert_generations_consistent(run, current=1)
        assert_serves(base, SIMPLE_PORTS)
        assert_silent(base, ADVANCED_ONLY)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS), marked(state)
        assert running_pids(run)["webapp1"] == before["webapp1"], "webapp1 was restarted"
        doctor = run("doctor", check=False)
        assert doctor.returncode == 0 and "no stray processes" in doctor.stdout, doctor.stdout
        assert_not_stuck(run, state, base)
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


# --- a backend that cannot work: systemd's system manager without root ---------------

def _as_nobody(argv: list[str], cwd: Path, env: Mapping[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    """``python -m procmgmt ARGV`` as an unprivileged user (root: as nobody)."""
    cmd = [sys.executable, "-m", "procmgmt", *argv]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PROCMGMT_SYSTEMD_USER", None)
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("needs runuser to drop root")
        cmd = [runuser, "-u", "nobody", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd,
                          env=full_env, check=False)


@pytest.mark.e2e
def test_systemd_without_root_is_not_stuck(tmp_path: Path) -> None:
    """Not root: 'switch -P systemd' after a supervisord deployment fails at the pre-flight
    and changes nothing; every later switch, repair and undeploy works (with the crash
    hook armed too). The journal-side restore of a generation whose backend cannot be
    used is test_rejected_program_file_is_not_relinked's."""
    base = free_port_block(2)
    # pytest's tmp dirs are private to root: the unprivileged user needs its own.
    top = Path(tempfile.mkdtemp(prefix="procmgmt-nonroot-"))
    top.chmod(0o755)
    state = top / "state"
    state.mkdir()
    state.chmod(0o777)  # the unprivileged user creates everything below

    def run(*args: str, env: Mapping[str, str] | None = None,
            manager: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [args[0], "--state-dir", str(state), "--extra-params",
                f'{{"port_base": {base}}}',
                *(["-P", manager] if manager else []), *args[1:]]
        return _as_nobody(argv, top, env)

    try:
        ok = run("switch", str(SIMPLE), manager="supervisord")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert_serves(base, SIMPLE_PORTS)
        for env in ({}, {CRASH_ENV: "journaled"}):
            bad = run("switch", str(SIMPLE), manager="systemd", env=env)
            # The pre-flight knows before anything changes (so the crash hook at
            # 'journaled' is never reached): exit 1, no journal, nothing stopped.
            assert bad.returncode == 1, bad.stdout + bad.stderr
            assert "pre-flight found" in bad.stderr and "needs root" in bad.stderr, bad.stderr
            assert not journal(state).exists()
            for cmd in (("repair",), ("switch", str(SIMPLE))):
                again = run(*cmd)
                assert again.returncode == 0, f"{cmd}: {again.stdout}{again.stderr}"
                assert not journal(state).exists()
            assert_serves(base, SIMPLE_PORTS)
        undeploy = run("switch", "--undeploy")
        assert undeploy.returncode == 0, undeploy.stdout + undeploy.stderr
        assert wait_marked_names(state, set()) == set()
    finally:
        run("switch", "--undeploy")
        for pid in marked(state):
            os.kill(pid, 9)
        subprocess.run(["rm", "-rf", str(top)], check=False)


# --- files the manager refuses: a supervisord program with an unknown user ------------

BADFILE = MODELS / "badfile.py"


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["failed", "crash-journaled", "no-rollback"])
def test_rejected_program_file_is_not_relinked(how: str, tmp_path: Path) -> None:
    """supervisord refuses a generation's program files (CANT_REREAD). However the
    switch ended (failed and undone, killed before the reload, or --no-rollback after
    it), repair, a good switch and --undeploy work: repair relinks the *current*
    generation's files, never the failed one's."""
    base = free_port_block(7)
    state = tmp_path / "state"
    run = Cli(state, "supervisord", {"port_base": base}, cwd=tmp_path)
    try:
        run("switch", SIMPLE)
        if how == "failed":
            bad = run("switch", "--replace", BADFILE, check=False, fresh=True)
            assert bad.returncode == 1, bad.stdout + bad.stderr
            assert "CANT_REREAD" in bad.stderr and "restored" in bad.stderr, bad.stderr
            assert not journal(state).exists()
        elif how == "crash-journaled":
            bad = run("switch", "--replace", BADFILE, check=False, fresh=True,
                      env={CRASH_ENV: "journaled"})
            assert bad.returncode == -9, bad.stdout + bad.stderr
            assert journal(state).exists()
        else:
            bad = run("switch", "--replace", "--no-rollback", BADFILE, check=False, fresh=True)
            assert bad.returncode == 1 and "CANT_REREAD" in bad.stderr, bad.stderr
            assert journal(state).exists()
        rep = run("repair", fresh=True)
        assert rep.returncode == 0, rep.stdout + rep.stderr
        assert not journal(state).exists()
        assert_generations_consistent(run, current=1)
        assert_serves(base, SIMPLE_PORTS)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS)
        assert_not_stuck(run, state, base)
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


# --- restoring impossible: say what is left, then repair --abandon --------------------

@pytest.mark.e2e
def test_repair_that_cannot_restore_offers_abandon(tmp_path: Path) -> None:
    """A --no-rollback failure leaves the new webapp and 'sleeper' running; the repair
    cannot stop one of them (a stop fails): it exits 1 naming what may still run and
    offering 'repair --abandon', and keeps the journal. --abandon drops it and says
    what still runs; doctor lists those as strays and --stop ends them; then the
    profile switches normally."""
    base = free_port_block(3)
    state = tmp_path / "state"
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    run = Cli(state, "sysvinit", {"port_base": base, "fault": "never_ready",
                                  "probe_port": base + 2, "stamp_dir": str(stamps)},
              cwd=tmp_path)
    try:
        run("switch", SIMPLE)
        bad = run("switch", "--replace", "--no-rollback", MODELS / "faulty.py", check=False,
                  fresh=True)
        assert bad.returncode == 1, bad.stdout + bad.stderr
        assert journal(state).exists()
        rep = run("repair", check=False, fresh=True, env={FAIL_ENV: "stop"})
        assert rep.returncode == 1, rep.stdout + rep.stderr
        assert "may still run" in rep.stderr and "of the interrupted switch" in rep.stderr, \
            rep.stderr
        assert "procmgmt repair --abandon" in rep.stderr, rep.stderr
        assert journal(state).exists(), "the journal must stay for another try"
        # Without --abandon every switch keeps trying to restore first; it works now.
        abandon = run("repair", "--abandon", fresh=True)
        assert "dropped the journal" in abandon.stdout, abandon.stdout
        assert "still runs (pid" in abandon.stdout, abandon.stdout
        assert not journal(state).exists()
        doctor = run("doctor", check=False)
        assert doctor.returncode == 1 and "stray process" in doctor.stdout, doctor.stdout
        assert run("doctor", "--stop", check=False).returncode == 0
        again = run("switch", SIMPLE, fresh=True)
        assert "deployed" in again.stdout, again.stdout + again.stderr
        assert_serves(base, SIMPLE_PORTS)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS)
        assert "nothing to abandon" in run("repair", "--abandon").stdout
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


def test_fail_points_are_documented() -> None:
    """Every failure point is listed where test hooks are documented."""
    text = (REPO / "docs" / "guarantees.md").read_text()
    for point in FAIL_POINTS:
        assert f"`{point}`" in text, point


@pytest.mark.e2e
@pytest.mark.parametrize("recovery", ["repair", "switch"])
def test_a_current_process_that_does_not_start_blocks_nothing(recovery: str,
                                                               tmp_path: Path) -> None:
    """After a --no-rollback failure, recovery stops the failed generation's processes
    but generation 1's webapp does not start again (an injected start failure). That is
    a known state (generation 1 with a process down), not a stuck one: the journal goes;
    'repair' exits 1 naming the process, a 'switch' says so and goes on, and starts it."""
    base = free_port_block(2)
    state = tmp_path / "state"
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    run = Cli(state, "sysvinit", {"port_base": base, "fault": "exit",
                                  "stamp_dir": str(stamps)}, cwd=tmp_path)
    try:
        run("switch", SIMPLE)
        bad = run("switch", "--replace", "--no-rollback", MODELS / "faulty.py", check=False,
                  fresh=True)
        assert bad.returncode == 1 and journal(state).exists(), bad.stdout + bad.stderr
        if recovery == "repair":
            rep = run("repair", check=False, fresh=True, env={FAIL_ENV: "start"})
            assert rep.returncode == 1, rep.stdout + rep.stderr
            assert "webapp of generation 1 (sysvinit) is not running" in rep.stderr, rep.stderr
            assert "--abandon" not in rep.stderr, rep.stderr
            assert not journal(state).exists()
            assert "nothing to repair" in run("repair").stdout
            again = run("switch", SIMPLE, fresh=True)
        else:
            again = run("switch", SIMPLE, fresh=True, env={FAIL_ENV: "start"})
            assert "webapp of generation 1 (sysvinit) is not running" in again.stdout, \
                again.stdout
        assert "generation 1 deployed" in again.stdout, again.stdout + again.stderr
        assert not journal(state).exists()
        assert_serves(base, SIMPLE_PORTS)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS), marked(state)
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"
