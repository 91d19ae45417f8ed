"""Two switches of one profile at the same time are serialized by the profile lock.

The first switch deploys ``models/inflight.py`` (generation 2), whose
``lagging`` daemon takes 1.5 s to start, so the first switch surely holds the
lock when the second one, with another model (the webapps), begins. The
second says that it waits (naming the first one's pid) and runs after it;
with ``--no-wait`` it fails at once with a clear message instead. Either
way the processes that run afterwards are exactly those of the generation
recorded as current, and the generation list is consistent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.util import free_port_block
from tests.faults import (
    MODELS,
    SIMPLE,
    SIMPLE_PORTS,
    Cli,
    assert_generations_consistent,
    assert_serves,
    cleanup,
    marked,
    running_pids,
    wait_marked_names,
)

INFLIGHT = MODELS / "inflight.py"
SLOW_NAMES = {"anchor", "lagging", "quick"}


def _start_slow_switch(slow: Cli) -> subprocess.Popen[str]:
    """Start the slow switch and return once it holds the lock (it has begun starting)."""
    proc = subprocess.Popen([sys.executable, "-m", "procmgmt",
                             *slow.argv("switch", INFLIGHT)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=slow.cwd, env=dict(os.environ))
    assert proc.stdout is not None
    for line in proc.stdout:  # progress lines are flushed one by one
        if line.startswith("starting "):
            return proc
    proc.wait()
    raise AssertionError(f"the slow switch never started anything: {proc.stderr}")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out + err


@pytest.mark.e2e
def test_second_switch_waits(tmp_path: Path) -> None:
    """The second switch prints that it waits for the first (by pid), runs after it, and
    its generation is the current one: only its processes run."""
    base = free_port_block(2)
    state = tmp_path / "state"
    slow = Cli(state, "sysvinit", {"generation": 2, "lag": 1.5}, cwd=tmp_path)
    webapps = Cli(state, "sysvinit", {"port_base": base}, cwd=tmp_path)
    first: subprocess.Popen[str] | None = None
    try:
        first = _start_slow_switch(slow)
        t0 = time.monotonic()
        second = webapps("switch", "--replace", SIMPLE, fresh=True)
        waited = time.monotonic() - t0
        rc, out = _finish(first)
        assert rc == 0, out
        assert "generation 1 deployed" in out, out
        assert f"waiting for another procmgmt (pid {first.pid})" in second.stdout, second.stdout
        assert "generation 2 deployed" in second.stdout, second.stdout
        # Serialized: the second stopped what the first had started (all of it).
        assert {f"stopping {n}" for n in SLOW_NAMES} <= set(second.stdout.splitlines())
        assert waited > 0.5, f"the second switch did not wait ({waited:.2f} s)"

        assert_generations_consistent(webapps, current=2)
        assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS)
        assert_serves(base, SIMPLE_PORTS)
        assert all(running_pids(webapps).values())
    finally:
        if first is not None and first.poll() is None:
            first.wait(timeout=60)
        cleanup(webapps, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


@pytest.mark.e2e
def test_second_switch_no_wait_fails(tmp_path: Path) -> None:
    """With --no-wait the second switch fails at once (exit 1) saying another procmgmt
    (by pid) is switching the profile; it changes nothing: the first one's generation is
    current and only its processes run."""
    base = free_port_block(2)
    state = tmp_path / "state"
    slow = Cli(state, "sysvinit", {"generation": 2, "lag": 1.5}, cwd=tmp_path)
    webapps = Cli(state, "sysvinit", {"port_base": base}, cwd=tmp_path)
    first: subprocess.Popen[str] | None = None
    try:
        first = _start_slow_switch(slow)
        second = webapps("switch", "--replace", "--no-wait", SIMPLE, check=False, fresh=True)
        still_running = first.poll() is None
        rc, out = _finish(first)
        assert rc == 0, out
        assert still_running, "the first switch had finished: the test proves nothing"
        assert second.returncode == 1, second.stdout + second.stderr
        assert (f"profile 'processes' is being switched by another procmgmt (pid {first.pid})"
                in second.stderr), second.stderr
        assert "starting" not in second.stdout and "stopping" not in second.stdout

        assert_generations_consistent(slow, current=1)
        assert wait_marked_names(state, SLOW_NAMES) == SLOW_NAMES
        assert all(running_pids(slow).values())
    finally:
        if first is not None and first.poll() is None:
            first.wait(timeout=60)
        cleanup(webapps, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"
