"""The systemd activator's command plan, recorded through its runner: which
``systemctl`` calls a switch makes, in which order, and what it links. No
process is spawned and no systemd is needed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from procmgmt.backends._activation import CommandResult
from procmgmt.backends.systemd import SystemdActivator
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings, resolve


class FakeSystemctl:
    """A runner that records each argv and answers as a systemd would whose
    units all stay active (``start_fails``: whose ``start`` fails)."""

    def __init__(self, start_fails: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.start_fails = start_fails

    def __call__(self, argv: Sequence[str]) -> CommandResult:
        self.calls.append(list(argv))
        verb = argv[3]
        if verb == "start" and self.start_fails:
            return CommandResult(1, "Job for web.service failed.")
        if verb == "show":
            return CommandResult(0, "ActiveState=active\nSubState=running\nResult=success\n"
                                    "MainPID=42\nLoadState=loaded\nNRestarts=2\n")
        if verb == "status":
            return CommandResult(3, "web.service - failed\nMain process exited")
        return CommandResult(0)


def _settings(tmp_path: Path) -> Settings:
    return resolve({"state_dir": str(tmp_path / "state")})


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> tuple[Path, Generation, DeployedProcess]:
    target = tmp_path / "units"
    monkeypatch.setenv("PROCMGMT_SYSTEMD_USER", "1")
    monkeypatch.setenv("PROCMGMT_SYSTEMD_TARGET_DIR", str(target))
    store = Path(_settings(tmp_path).store_dir)
    entry = store / "abc-web"
    (entry / "etc/systemd/system").mkdir(parents=True)
    (entry / "etc/systemd/system/procmgmt-web.service").write_text("[Service]\n")
    proc = DeployedProcess("web", "h", str(entry), 0,
                           extra={"unit": "procmgmt-web.service",
                                  "unit_file": "etc/systemd/system/procmgmt-web.service"})
    return target, Generation("systemd", str(store / "gen"), (proc,)), proc


def _activator(tmp_path: Path, runner: FakeSystemctl) -> SystemdActivator:
    return SystemdActivator(_settings(tmp_path), runner=runner)


USER = ["systemctl", "--user", "--no-ask-password"]


def test_switch_links_reloads_starts_and_checks(
        tmp_path: Path, setup: tuple[Path, Generation, DeployedProcess]) -> None:
    target, gen, proc = setup
    fake = FakeSystemctl()
    act = _activator(tmp_path, fake)
    act.prepare(gen, None)
    act.start(gen, proc)
    link = target / "procmgmt-web.service"
    assert link.is_symlink()
    assert str(link.readlink()) == f"{proc.path}/etc/systemd/system/procmgmt-web.service"
    assert fake.calls[:2] == [[*USER, "daemon-reload"], [*USER, "start", "procmgmt-web.service"]]
    assert set(map(tuple, fake.calls[2:])) == {tuple([*USER,
        "show", "--property=ActiveState", "--property=SubState", "--property=Result",
        "procmgmt-web.service"])}


def test_stop_of_an_obsolete_unit_removes_its_link_and_finish_reloads(
        tmp_path: Path, setup: tuple[Path, Generation, DeployedProcess]) -> None:
    target, gen, proc = setup
    fake = FakeSystemctl()
    act = _activator(tmp_path, fake)
    act.prepare(gen, None)
    empty = Generation("systemd", gen.path, ())
    act.prepare(empty, gen)
    fake.calls.clear()
    act.stop(gen, proc)
    act.finish(empty, gen)
    assert not (target / "procmgmt-web.service").exists()
    assert fake.calls == [[*USER, "stop", "procmgmt-web.service"], [*USER, "daemon-reload"],
                          [*USER, "reset-failed", "procmgmt-web.service"]]


def test_status_and_reload(tmp_path: Path,
                           setup: tuple[Path, Generation, DeployedProcess]) -> None:
    _, gen, proc = setup
    fake = FakeSystemctl()
    act = _activator(tmp_path, fake)
    status = act.status(gen, proc)
    assert (status.running, status.pid, status.restarts) == (True, 42, 2)
    assert act.activity(gen, proc, "reload") == 0
    assert fake.calls == [
        [*USER, "show", "--property=ActiveState", "--property=SubState", "--property=MainPID",
                "--property=NRestarts", "procmgmt-web.service"],
        [*USER, "reload", "procmgmt-web.service"],
    ]


def test_a_failed_start_quotes_systemctl_and_the_units_status(
        tmp_path: Path, setup: tuple[Path, Generation, DeployedProcess]) -> None:
    _, gen, proc = setup
    fake = FakeSystemctl(start_fails=True)
    act = _activator(tmp_path, fake)
    with pytest.raises(DeployError) as info:
        act.start(gen, proc)
    assert str(info.value) == ("web: systemd could not start procmgmt-web.service: "
                               "Job for web.service failed.\n"
                               "web.service - failed\nMain process exited")
    assert fake.calls[-1] == [*USER, "status", "--no-pager", "--full", "--lines=20",
                                     "procmgmt-web.service"]
