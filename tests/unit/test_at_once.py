"""Starts and stops that never block run on the engine's own thread.

A backend whose start only hands the process to a supervisor that is already
there (runit's ``u``, s6's ``-u``) or whose stop only signals says so
(``Activator.starts_at_once`` / ``stops_at_once``), and the engine then calls
it on the thread that runs the switch instead of a worker: handed to workers,
a thousand such starts went out eight per round of the scheduler's loop. Against
a recording activator (nothing runs): where each call ran, and that the order
of dependencies still holds.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from procmgmt.deploy.build import build, evaluate
from procmgmt.deploy.engine import Engine, Options
from procmgmt.deploy.profile import Profile
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings
from tests.backends._helpers import tmp_settings
from tests.unit.test_apply import Recording

MODEL = """\
from procmgmt import Instance, Process

def processes(settings):
    a = Process(name="a", foreground_process="/bin/sleep", args=["1"])
    out = {"a": Instance(a)}
    for i in range(6):
        out[f"b{i}"] = Instance(Process(name=f"b{i}", foreground_process="/bin/sleep",
                                        args=["1"], dependencies=[a]))
    return out
"""


class Threads(Recording):
    """Records the thread of every start and stop; ``at_once`` is what it says of both."""

    def __init__(self, settings: Settings, at_once: bool) -> None:
        super().__init__(settings)
        self.at_once = at_once
        self.threads: list[tuple[str, str, str]] = []

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        self.threads.append(("start", proc.name, threading.current_thread().name))
        super().start(gen, proc)

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        self.threads.append(("stop", proc.name, threading.current_thread().name))
        super().stop(gen, proc)

    def starts_at_once(self, proc: DeployedProcess) -> bool:
        return self.at_once

    def stops_at_once(self, proc: DeployedProcess) -> bool:
        return self.at_once


def _deploy_and_undeploy(tmp_path: Path, act: Threads, **options: object) -> None:
    settings = tmp_settings(tmp_path, manager="sysvinit")
    model_file = tmp_path / "model.py"
    model_file.write_text(MODEL)
    engine = Engine(settings, out=io.StringIO(),
                    options=Options(start_grace=0.0, **options))  # type: ignore[arg-type]
    engine.use_activator("sysvinit", act)
    model, specs = evaluate(str(model_file), settings)
    gen = build(model, specs, settings)
    profile = Profile(settings)
    engine.switch(gen, lambda: profile.add(gen.path))
    engine.switch(Generation("sysvinit", "", ()), lambda: None)


@pytest.mark.parametrize("at_once", [True, False])
def test_calls_that_never_block_run_on_the_switchs_thread(tmp_path: Path,
                                                          at_once: bool) -> None:
    act = Threads(tmp_settings(tmp_path, manager="sysvinit"), at_once)
    _deploy_and_undeploy(tmp_path, act, max_parallel=4)
    here = threading.current_thread().name
    assert len(act.threads) == 14
    on_this_thread = {t == here for _, _, t in act.threads}
    assert on_this_thread == {at_once}
    starts = [n for kind, n, _ in act.threads if kind == "start"]
    stops = [n for kind, n, _ in act.threads if kind == "stop"]
    assert starts[0] == "a" and stops[-1] == "a"  # a dependency starts first, stops last


def test_sequential_mode_keeps_its_one_at_a_time_order(tmp_path: Path) -> None:
    """``--sequential``: nothing runs at once, in the model's dependency order."""
    act = Threads(tmp_settings(tmp_path, manager="sysvinit"), True)
    _deploy_and_undeploy(tmp_path, act, max_parallel=1)
    starts = [n for kind, n, _ in act.threads if kind == "start"]
    assert starts == ["a", *(f"b{i}" for i in range(6))]
