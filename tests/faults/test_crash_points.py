"""kill -9 at every point of a switch, then recover: real processes, no leftovers.

Generation 1 is ``examples/webapps/processes.py`` (webapp, webapp1). The
switch to ``processes-advanced.py`` stops ``webapp``, keeps ``webapp1`` and
starts webapp2..6; ``PROCMGMT_CRASH_AT=<point>`` makes procmgmt SIGKILL
itself at that point (no cleanup, no ``finally``: as a power cut or the OOM
killer would). Then either

- ``procmgmt repair``: the *recorded current* generation runs exactly (its
  processes answer, the others do not). That is generation 1 for every point
  before ``registered``, generation 2 from ``registered`` on (the switch had
  completed and recorded it), or
- the next ``switch processes-advanced.py`` converges: every advanced process
  answers, ``webapp`` does not, generation 2 is current.

In both cases ``--list-generations`` is consistent (numbers 1..N, exactly one
current, its processes are the ones running, checked by the deployment
marker in ``/proc``) and ``procmgmt doctor`` reports no stray process and no
journal. sysvinit runs all 10 points with both recoveries; supervisord a
representative subset (before any stop, between stop and start, after a
start, after registering).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from procmgmt.deploy.engine import CRASH_ENV
from tests.e2e.util import free_port_block
from tests.faults import (
    ADVANCED,
    ADVANCED_PORTS,
    MODELS,
    SIMPLE,
    SIMPLE_PORTS,
    Cli,
    assert_generations_consistent,
    assert_serves,
    assert_silent,
    cleanup,
    marked,
    marked_names,
    status,
    wait_marked_names,
)

#: Every checkpoint of Engine.switch, in the order a switch passes them.
POINTS = ["locked", "journaled", "prepared", "stopping", "stopped", "starting", "started",
          "activated", "registered", "done"]
#: From these on the new generation was recorded: repair keeps it.
RECORDED = {"registered", "done"}
SUPERVISORD_POINTS = ["journaled", "stopped", "started", "registered"]

CASES = ([pytest.param("sysvinit", p, mode, id=f"sysvinit-{p}-{mode}")
          for p in POINTS for mode in ("repair", "switch")]
         + [pytest.param("supervisord", p, mode, id=f"supervisord-{p}-{mode}")
            for i, p in enumerate(SUPERVISORD_POINTS)
            for mode in [("repair", "switch")[i % 2]]])


def check_runs_exactly(run: Cli, state: Path, base: int, current: int,
                       ports: dict[str, int], others: dict[str, int]) -> None:
    """The current generation is ``current`` and its processes, and only they, run."""
    assert_generations_consistent(run, current=current)
    assert_serves(base, ports)
    assert_silent(base, others)
    names = wait_marked_names(state, set(ports))
    assert names == set(ports), f"running {sorted(names)}, expected {sorted(ports)}"
    doctor = run("doctor", check=False)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "no stray processes" in doctor.stdout and "repair" not in doctor.stdout, \
        doctor.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(("backend", "point", "mode"), CASES)
def test_crash_point(backend: str, point: str, mode: str, tmp_path: Path) -> None:
    """SIGKILL at ``point`` of the upgrade, then ``mode`` (repair or the next switch)
    leaves exactly one consistent, running generation and no stray process."""
    base = free_port_block(7)
    state = tmp_path / "state"
    run = Cli(state, backend, {"port_base": base}, cwd=tmp_path)
    try:
        run("switch", SIMPLE)
        assert_serves(base, SIMPLE_PORTS)

        crashed = run("switch", "--replace", ADVANCED, check=False, fresh=True,
                      env={CRASH_ENV: point})
        assert crashed.returncode == -9, (
            f"expected death by SIGKILL at {point}, got {crashed.returncode}:\n"
            f"{crashed.stdout}\n{crashed.stderr}")

        advanced_only = {n: o for n, o in ADVANCED_PORTS.items() if n not in SIMPLE_PORTS}
        gone = {n: o for n, o in SIMPLE_PORTS.items() if n not in ADVANCED_PORTS}
        if mode == "repair":
            rep = run("repair", fresh=True)
            journal_expected = point not in {"locked", "done"}
            assert ("repaired" in rep.stdout) == journal_expected, rep.stdout
            if point in RECORDED:
                check_runs_exactly(run, state, base, 2, ADVANCED_PORTS, gone)
            else:
                check_runs_exactly(run, state, base, 1, SIMPLE_PORTS, advanced_only)
        else:
            out = run("switch", "--replace", ADVANCED, fresh=True)
            assert "generation 2 deployed" in out.stdout, out.stdout
            check_runs_exactly(run, state, base, 2, ADVANCED_PORTS, gone)
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


INFLIGHT = MODELS / "inflight.py"


def _up(run: Cli) -> dict[str, bool]:
    rows = status(run)["processes"]
    assert isinstance(rows, list)
    return {str(r["name"]): bool(r["running"]) for r in rows}


@pytest.mark.e2e
def test_crash_with_start_in_flight(tmp_path: Path) -> None:
    """sysvinit: procmgmt dies while another start script still runs (a daemon that takes
    1.5 s to fork). The script finishes after the crash; repair must wait for it and stop
    what it started, instead of looking too early and leaving a stray behind."""
    state = tmp_path / "state"
    gen1 = Cli(state, "sysvinit", {"generation": 1}, cwd=tmp_path)
    gen2 = Cli(state, "sysvinit", {"generation": 2, "lag": 1.5}, cwd=tmp_path)
    try:
        gen1("switch", INFLIGHT)
        crashed = gen2("switch", INFLIGHT, check=False, fresh=True,
                       env={CRASH_ENV: "started"})
        assert crashed.returncode == -9, crashed.stdout + crashed.stderr
        assert "starting lagging" in crashed.stdout, "the lagging start was not in flight"
        rep = gen1("repair", fresh=True)
        assert "repaired" in rep.stdout, rep.stdout
        time.sleep(2.0)  # longer than the lag: a start repair missed would be done by now
        assert marked_names(state) == {"anchor"}, marked(state)
        assert _up(gen1) == {"anchor": True}
        doctor = gen1("doctor", check=False)
        assert doctor.returncode == 0 and "no stray processes" in doctor.stdout, doctor.stdout
        assert_generations_consistent(gen1, current=1)
    finally:
        cleanup(gen1, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


@pytest.mark.e2e
def test_crash_with_stop_in_flight(tmp_path: Path) -> None:
    """sysvinit: procmgmt dies while another process it sent SIGTERM still shuts down (it
    takes 1 s). It exits after the crash; repair must finish that stop and start it again,
    not find it 'running' a moment too early and leave it to die."""
    state = tmp_path / "state"
    gen3 = Cli(state, "sysvinit", {"generation": 3}, cwd=tmp_path)
    gen1 = Cli(state, "sysvinit", {"generation": 1}, cwd=tmp_path)
    try:
        gen3("switch", INFLIGHT)
        crashed = gen1("switch", INFLIGHT, check=False, fresh=True,
                       env={CRASH_ENV: "stopped"})
        assert crashed.returncode == -9, crashed.stdout + crashed.stderr
        assert "stopping slowexit" in crashed.stdout, "the slow stop was not in flight"
        rep = gen3("repair", fresh=True)
        assert "repaired" in rep.stdout, rep.stdout
        time.sleep(1.5)  # past the shutdown: a stop repair missed would be done by now
        expected = {"anchor", "quick", "slowexit"}
        assert marked_names(state) == expected, marked(state)
        assert _up(gen3) == dict.fromkeys(expected, True)
        doctor = gen3("doctor", check=False)
        assert doctor.returncode == 0 and "no stray processes" in doctor.stdout, doctor.stdout
        assert_generations_consistent(gen3, current=1)
    finally:
        cleanup(gen3, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"
