"""The switch use case (procmgmt.deploy.switch): what it records, and that
engine settings are fixed at construction. Only the empty model is deployed
here, so no process is started."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from procmgmt.cli.main import show_library_warnings
from procmgmt.deploy.options import Options
from procmgmt.deploy.switch import Switcher, keep_current_backend
from procmgmt.errors import GenerationError, UsageError
from procmgmt.settings import Settings, resolve


def settings_in(state: Path, manager: str | None = "sysvinit") -> Settings:
    cli = {"state_dir": str(state), "force_disable_user_change": True}
    if manager is not None:
        cli["process_manager"] = manager
    return resolve(cli, {})


def test_the_same_store_path_keeps_its_generation_number(tmp_path: Path) -> None:
    """Deploying what is already current records no new generation."""
    switcher = Switcher(settings_in(tmp_path), out=io.StringIO())
    first = switcher.undeploy()
    again = switcher.undeploy()
    assert first.number == again.number == 1
    assert first.generation.path == again.generation.path
    assert [g.number for g in switcher.profile.generations()] == [1]


def test_a_dry_run_records_nothing(tmp_path: Path) -> None:
    switcher = Switcher(settings_in(tmp_path), out=io.StringIO())
    planned = switcher.undeploy(dry_run=True)
    assert planned.number is None
    assert planned.plan.describe() == ["nothing deployed, nothing to do"]
    assert switcher.profile.generations() == []


def test_switching_to_a_generation_moves_the_current_pointer(tmp_path: Path) -> None:
    switcher = Switcher(settings_in(tmp_path), out=io.StringIO())
    switcher.undeploy()
    with pytest.raises(GenerationError, match="no generation before"):
        switcher.rollback()
    assert switcher.switch_to_generation(1).number == 1
    assert switcher.profile.current_number() == 1


def test_none_is_refused_before_the_model_runs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="-P none only writes agnostic JSON specs"):
        Switcher(settings_in(tmp_path, "none")).deploy(str(tmp_path / "missing.py"))


def test_without_a_manager_the_current_one_is_kept(tmp_path: Path) -> None:
    Switcher(settings_in(tmp_path, "supervisord"), out=io.StringIO()).undeploy()
    kept = keep_current_backend(settings_in(tmp_path, None))
    assert kept.process_manager == "supervisord"
    chosen = keep_current_backend(settings_in(tmp_path, "sysvinit"))
    assert chosen.process_manager == "sysvinit"


def test_engine_settings_and_options_cannot_be_replaced(tmp_path: Path) -> None:
    engine = Switcher(settings_in(tmp_path), Options(max_parallel=3)).engine
    assert engine.options.max_parallel == 3
    with pytest.raises(AttributeError):
        engine.settings = settings_in(tmp_path / "other")  # type: ignore[misc]


def test_library_warnings_reach_stderr_with_the_cli_prefix(
        capsys: pytest.CaptureFixture[str]) -> None:
    show_library_warnings()
    show_library_warnings()  # once only: no doubled lines
    logging.getLogger("procmgmt.deploy.switch").warning("%s", "look here")
    assert capsys.readouterr().err == "procmgmt: warning: look here\n"
