"""The sysvinit activator's command plan, recorded through its runner: which
script runs with which activity, and how a failure reads. No process is spawned."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from procmgmt.backends._activation import TIMED_OUT, CommandResult
from procmgmt.backends.sysvinit import SysVInitActivator
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import resolve

OK = CommandResult(0)


class Recorder:
    """A runner that records each argv and answers with a fixed result."""

    def __init__(self, result: CommandResult = OK) -> None:
        self.calls: list[list[str]] = []
        self.result = result

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        return self.result


def _setup(tmp_path: Path, result: CommandResult = OK, **extra: object
           ) -> tuple[SysVInitActivator, Recorder, Generation, DeployedProcess]:
    recorder = Recorder(result)
    act = SysVInitActivator(resolve({"state_dir": str(tmp_path)}), runner=recorder)
    proc = DeployedProcess("web", "h", "/store/abc-web", 0,
                           extra={"script": "etc/rc.d/init.d/web", **extra})
    return act, recorder, Generation("sysvinit", "/store/gen", (proc,)), proc


def test_start_runs_the_script_from_the_store(tmp_path: Path) -> None:
    act, recorder, gen, proc = _setup(tmp_path)
    act.start(gen, proc)
    assert recorder.calls == [["/store/abc-web/etc/rc.d/init.d/web", "start"]]


def test_overridden_stop_runs_the_script(tmp_path: Path) -> None:
    act, recorder, gen, proc = _setup(tmp_path, native_stop=False)
    assert act.stop(gen, proc) is None
    assert recorder.calls == [["/store/abc-web/etc/rc.d/init.d/web", "stop"]]


def test_generated_stop_without_a_pid_file_runs_nothing(tmp_path: Path) -> None:
    """The generated stop is done by the activator itself: with no pid file
    there is nothing to signal and no command to run."""
    act, recorder, gen, proc = _setup(tmp_path, native_stop=True,
                                      pid_file=str(tmp_path / "web.pid"))
    assert act.stop(gen, proc) is None
    assert recorder.calls == []


def test_activity_runs_the_script_and_passes_its_output_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    act, recorder, gen, proc = _setup(tmp_path, CommandResult(0, "reloaded"))
    assert act.activity(gen, proc, "reload") == 0
    assert recorder.calls == [["/store/abc-web/etc/rc.d/init.d/web", "reload"]]
    assert capsys.readouterr().out == "reloaded\n"


def test_a_failed_start_quotes_the_scripts_output(tmp_path: Path) -> None:
    act, _, gen, proc = _setup(tmp_path, CommandResult(1, "one\ntwo\n"))
    with pytest.raises(DeployError) as info:
        act.start(gen, proc)
    assert str(info.value) == ("web: '/store/abc-web/etc/rc.d/init.d/web start' "
                               "failed with exit status 1:\none\ntwo")


def test_a_start_past_its_timeout_says_so(tmp_path: Path) -> None:
    act, _, gen, proc = _setup(tmp_path, CommandResult(TIMED_OUT), start_timeout=5)
    with pytest.raises(DeployError, match=r"web start' did not finish within 65 s$"):
        act.start(gen, proc)
