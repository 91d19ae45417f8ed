"""``Activator.apply``: a manager that diffs itself takes the whole plan.

Against a recording activator (nothing runs): with ``apply`` the engine hands
over the plan once and still runs each started process's readiness wait
(here the start grace, through ``status``) in dependency order; without it
the engine stops and starts process by process. A process the manager does
not report running after ``apply`` fails the switch like any start.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from procmgmt.backends.base import Activator, ProcessStatus
from procmgmt.deploy.build import build, evaluate
from procmgmt.deploy.engine import Engine, Options
from procmgmt.deploy.plan import Plan
from procmgmt.deploy.profile import Profile
from procmgmt.errors import ProcmgmtError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings
from tests.backends._helpers import tmp_settings

MODEL = """\
from procmgmt import Instance, Process

def processes(settings):
    a = Process(name="a", foreground_process="/bin/sleep", args=["{a}"])
    b = Process(name="b", foreground_process="/bin/sleep", args=["1"], dependencies=[a])
    return {{"a": Instance(a), "b": Instance(b)}}
"""


class Recording(Activator):
    """Records every call; ``running`` is what the manager would report."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.calls: list[tuple[str, ...]] = []
        self.running: set[str] = set()

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        self.calls.append(("start", proc.name))
        self.running.add(proc.name)

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        self.calls.append(("stop", proc.name))
        self.running.discard(proc.name)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        return ProcessStatus(proc.name, proc.name in self.running)


class Diffing(Recording):
    """A manager that switches itself (``supervisorctl update``): one call per plan."""

    def __init__(self, settings: Settings, refuses: str = "") -> None:
        super().__init__(settings)
        self.refuses = refuses

    def apply(self, new: Generation, old: Generation | None, plan: Plan) -> None:
        self.calls.append(("apply", "old" if old else "none",
                           " ".join(p.name for p in plan.stop),
                           " ".join(p.name for p in plan.start)))
        self.running -= {p.name for p in plan.stop}
        self.running |= {p.name for p in plan.start if p.name != self.refuses}


def switch(tmp_path: Path, act: Recording, sleep: str) -> None:
    """Build the model (``a`` sleeping ``sleep``) and switch to it through ``act``."""
    settings = tmp_settings(tmp_path, manager="sysvinit")
    model_file = tmp_path / f"model-{sleep}.py"
    model_file.write_text(MODEL.format(a=sleep))
    engine = Engine(settings, out=io.StringIO(), options=Options(max_parallel=1,
                                                                 start_grace=0.0))
    engine.use_activator("sysvinit", act)
    model, specs = evaluate(str(model_file), settings)
    gen = build(model, specs, settings)
    profile = Profile(settings)
    engine.switch(gen, lambda: profile.add(gen.path))


def test_without_apply_the_engine_goes_process_by_process(tmp_path: Path) -> None:
    """Dependencies start first and stop last, one call per process."""
    act = Recording(tmp_settings(tmp_path, manager="sysvinit"))
    assert not act.applies_plans
    switch(tmp_path, act, "1")
    switch(tmp_path, act, "2")  # only a's files change
    assert act.calls == [("start", "a"), ("start", "b"), ("stop", "a"), ("start", "a")]


def test_apply_takes_the_whole_plan(tmp_path: Path) -> None:
    """One apply for the first deployment and one for the change; no per-process
    start or stop; the engine's readiness wait still sees both running."""
    act = Diffing(tmp_settings(tmp_path, manager="sysvinit"))
    assert act.applies_plans
    switch(tmp_path, act, "1")
    switch(tmp_path, act, "2")
    assert act.calls == [("apply", "none", "", "a b"), ("apply", "old", "a", "a")]
    assert act.running == {"a", "b"}


def test_a_process_the_manager_did_not_start_fails_the_switch(tmp_path: Path) -> None:
    """After apply the engine checks each started process, like after its own starts."""
    act = Diffing(tmp_settings(tmp_path, manager="sysvinit"), refuses="b")
    with pytest.raises(ProcmgmtError, match="b exited right after starting"):
        switch(tmp_path, act, "1")
    assert act.calls[0] == ("apply", "none", "", "a b")
