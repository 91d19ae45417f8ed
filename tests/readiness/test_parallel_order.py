"""Parallel activation honours readiness: recorded start/ready times prove the order."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.e2e.util import Runner, free_port_block, kill_leftovers, port_closed

# A DAG: a -> (b, c) -> d, plus e -> f, each listener ready 0.3 s after it starts.
MODEL = """
import sys
from procmgmt import Instance, Process
from procmgmt.readiness import TCP

LISTENER = {listener!r}
EDGES = {{"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": [], "f": ["e"]}}


def processes(settings):
    base = settings.extra_params["port_base"]
    procs = {{}}
    for i, name in enumerate(EDGES):
        port = base + i
        procs[name] = Process(
            name=name, foreground_process=sys.executable,
            foreground_process_args=[LISTENER, str(port), "0.3"],
            dependencies=[procs[d] for d in EDGES[name]],
            readiness=TCP(port=port, timeout=20))
    return {{n: Instance(p, port=base + i) for i, (n, p) in enumerate(procs.items())}}
"""

LISTENER = """
import socket, sys, time
time.sleep(float(sys.argv[2]))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
"""

EDGES = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": [], "f": ["e"]}


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sysvinit", "supervisord"])
def test_no_dependent_starts_before_its_dependency_is_ready(backend: str,
                                                            tmp_path: Path) -> None:
    """Every process starts only after all its dependencies were ready; independent
    branches overlap; analyze critical-chain names the longest chain."""
    base = free_port_block(len(EDGES))
    model = tmp_path / "dag.py"
    listener = tmp_path / "listener.py"
    listener.write_text(LISTENER)
    model.write_text(MODEL.format(listener=str(listener)))
    state = tmp_path / "state"
    run = Runner(state, backend, json.dumps({"port_base": base}), cwd=tmp_path)
    try:
        out = run("switch", model).stdout
        assert "ready    d (tcp" in out
        timeline = json.loads((state / "lib" / "procmgmt" / "profiles" /
                               "processes.last-switch.json").read_text())["processes"]
        for name, deps in EDGES.items():
            for dep in deps:
                assert timeline[name]["start"] >= timeline[dep]["ready"], (
                    f"{name} started at {timeline[name]['start']} before {dep} was ready "
                    f"at {timeline[dep]['ready']}")
        # Parallel, not level by level and not one by one: e starts with a, and
        # f is ready long before d (two chain steps against three).
        assert timeline["e"]["start"] < timeline["a"]["ready"]
        assert timeline["b"]["start"] < timeline["c"]["ready"]
        assert timeline["f"]["ready"] < timeline["d"]["ready"]
        total = max(e["ready"] for e in timeline.values())
        assert total < 3 * 0.3 + 3.0  # three levels of 0.3 s, with generous slack
        chain = run("analyze", "critical-chain").stdout
        assert "d @" in chain and "a @" in chain and "└─" in chain
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
    for i in range(len(EDGES)):
        assert port_closed(base + i)


@pytest.mark.e2e
def test_sequential_mode_is_one_at_a_time(tmp_path: Path) -> None:
    """--sequential starts each process only after the previous one is ready."""
    base = free_port_block(len(EDGES))
    model = tmp_path / "dag.py"
    listener = tmp_path / "listener.py"
    listener.write_text(LISTENER)
    model.write_text(MODEL.format(listener=str(listener)))
    state = tmp_path / "state"
    run = Runner(state, "sysvinit", json.dumps({"port_base": base}), cwd=tmp_path)
    try:
        run("switch", "--sequential", model)
        timeline = json.loads((state / "lib" / "procmgmt" / "profiles" /
                               "processes.last-switch.json").read_text())["processes"]
        spans = sorted((e["start"], e["ready"]) for e in timeline.values())
        for (_, ready), (start, _) in itertools.pairwise(spans):
            assert start >= ready
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
