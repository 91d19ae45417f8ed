"""A failed switch rolls back: real processes, sysvinit and supervisord.

Generation 1 is ``examples/webapps/processes.py``. The failing generation
(``models/faulty.py``) changes ``webapp`` (so the switch stops it and starts
the new version) and adds one fault: a process that exits at start, one that
never becomes ready, one that ignores SIGTERM and has to be removed again,
or a failing dependency whose dependent must never start.

Each time the switch exits 1 naming the process, the check and the last
error; generation 1 answers over HTTP again and is still the current one;
nothing of the failed generation runs (checked by the deployment marker in
``/proc``, not by asking procmgmt); ``doctor`` finds no stray. With
``--no-rollback`` the partial state stays and ``procmgmt repair`` restores
generation 1.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.util import free_port_block, start_lines, stop_lines
from tests.faults import (
    MODELS,
    SIMPLE,
    SIMPLE_PORTS,
    Cli,
    _environ,
    assert_generations_consistent,
    assert_serves,
    cleanup,
    marked,
    marked_names,
    running_pids,
    wait_marked_names,
)

BACKENDS = ["sysvinit", "supervisord"]
FAULTY = MODELS / "faulty.py"

#: fault -> (processes the failing generation adds, what the error must say besides the
#: process name: each entry is a tuple of alternatives, one of which must appear).
FAULTS: dict[str, tuple[list[str], str, list[tuple[str, ...]]]] = {
    # An early exit is seen either by the backend's start (supervisord: BACKOFF) or by
    # the engine's grace check; either way the message says so and quotes the log.
    "exit": (["crasher"], "crasher",
             [("exited right after starting", "failed to start"),
              ("cannot start: configuration missing",)]),
    "never_ready": (["sleeper"], "sleeper",
                    [("did not become ready within",), ("tcp 127.0.0.1:",),
                     ("Connection refused",)]),
    "stubborn": (["stubborn", "crasher"], "crasher",
                 [("exited right after starting", "failed to start"),
                  ("cannot start: configuration missing",)]),
    "dependency": (["base", "dependent"], "base",
                   [("exited right after starting", "failed to start"),
                    ("cannot start: configuration missing",)]),
}


def _setup(backend: str, tmp_path: Path, fault: str) -> tuple[Cli, Path, int]:
    base = free_port_block(3)  # webapp, webapp1, and a port nobody listens on
    state = tmp_path / "state"
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    params = {"port_base": base, "fault": fault, "probe_port": base + 2,
              "stamp_dir": str(stamps)}
    return Cli(state, backend, params, cwd=tmp_path), state, base


def _generation_of(pid: int) -> str:
    """'2' for a process of the failing generation (its changed environment), else '1'."""
    return _environ(pid).get("FAULT_TEST_GENERATION", "1")


@pytest.mark.e2e
@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_switch_rolls_back(backend: str, fault: str, tmp_path: Path) -> None:
    """switch to a generation with one fault: exit 1 with a precise message, generation 1
    answers again and stays current, nothing of the failed generation is left running."""
    run, state, base = _setup(backend, tmp_path, fault)
    added, culprit, fragments = FAULTS[fault]
    try:
        run("switch", SIMPLE)
        assert_serves(base, SIMPLE_PORTS)
        before = running_pids(run)

        t0 = time.monotonic()
        proc = run("switch", "--replace", FAULTY, check=False, fresh=True)
        took = time.monotonic() - t0
        assert proc.returncode == 1, proc.stdout + proc.stderr
        err = proc.stderr
        assert f"{culprit}" in err and "switch failed" in err, err
        for alternatives in fragments:
            assert any(a in err for a in alternatives), f"none of {alternatives} in:\n{err}"
        assert "the previous generation was restored" in err, err
        # The changed webapp really was replaced before the failure, then put back.
        assert "webapp" in stop_lines(proc.stdout), proc.stdout
        assert "webapp" in start_lines(proc.stdout), proc.stdout
        assert "restoring the previous generation" in proc.stdout

        # Generation 1 answers again, is current, and is all that runs.
        assert_serves(base, SIMPLE_PORTS)
        assert_generations_consistent(run, current=1)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS)
        assert all(_generation_of(pid) == "1" for pid in marked(state)), \
            "a process of the failed generation still runs"
        after = running_pids(run)
        assert after["webapp1"] == before["webapp1"], "the unchanged webapp1 was restarted"
        assert after["webapp"] and after["webapp"] != before["webapp"]
        doctor = run("doctor", check=False)
        assert doctor.returncode == 0 and "no stray processes" in doctor.stdout, doctor.stdout

        stamps = tmp_path / "stamps"
        if fault == "stubborn":
            # It was started, got SIGTERM, ignored it, and is gone all the same.
            assert (stamps / "stubborn.term").exists(), "stubborn never received SIGTERM"
            assert "stubborn" not in marked_names(state)
        if fault == "dependency":
            assert "dependent" not in start_lines(proc.stdout)
            assert not (stamps / "dependent.started").exists(), "the dependent was started"
        if fault == "never_ready":
            # Timeout 1 s: the rollback does not wait for a 30-s default.
            assert took < 25, f"the failed switch took {took:.1f} s"
        for name in added:
            assert name not in marked_names(state)
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


@pytest.mark.e2e
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_rollback_then_repair(backend: str, tmp_path: Path) -> None:
    """--no-rollback leaves the partial state (new webapp and stubborn running, generation 1
    still current, a journal), and 'procmgmt repair' restores generation 1 exactly."""
    run, state, base = _setup(backend, tmp_path, "stubborn")
    try:
        run("switch", SIMPLE)
        proc = run("switch", "--replace", "--no-rollback", FAULTY, check=False, fresh=True)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "crasher" in proc.stderr and "procmgmt repair" in proc.stderr, proc.stderr
        assert "restoring the previous generation" not in proc.stdout

        # Partial: the failed generation's processes that started still run.
        names = marked_names(state)
        assert {"stubborn", "webapp", "webapp1"} <= names, names
        assert "crasher" not in names
        assert any(_generation_of(pid) == "2" for pid, n in marked(state).items()
                   if n == "webapp"), "the new webapp should be the one running"
        assert_generations_consistent(run, current=1)
        doctor = run("doctor", check=False)
        assert "procmgmt repair" in doctor.stdout, doctor.stdout

        rep = run("repair", fresh=True)
        assert "repaired" in rep.stdout, rep.stdout
        assert_serves(base, SIMPLE_PORTS)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS)
        assert all(_generation_of(pid) == "1" for pid in marked(state))
        assert_generations_consistent(run, current=1)
        doctor = run("doctor", check=False)
        assert doctor.returncode == 0 and "no stray processes" in doctor.stdout, doctor.stdout
        assert "repair" not in doctor.stdout, "the journal is still there after repair"
        assert "nothing to repair" in run("repair").stdout
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"
