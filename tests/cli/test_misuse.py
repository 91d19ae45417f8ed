"""CLI misuse: every mistake gets one clear line on stderr and a non-zero exit, never a
traceback and never a screenful of usage text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.cli.main import main
from tests.conftest import EXAMPLES

EMPTY_MODEL = "def processes(settings):\n    return {}\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``procmgmt ARGV`` (argparse exits count)."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_clear_line(rc: int, err: str, *needles: str) -> None:
    """Non-zero exit; stderr is one ``...error: ...`` line naming ``needles``."""
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0], err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, err)


@pytest.fixture
def deployed_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Path]:
    """A state dir whose profile has generation 1 (the empty model) deployed."""
    model = tmp_path / "empty.py"
    model.write_text(EMPTY_MODEL)
    state = tmp_path / "state"
    rc, _, err = run(capsys, "switch", "--state-dir", str(state), "-P", "sysvinit", str(model))
    assert rc == 0, err
    yield state


def test_unknown_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unknown option is named, exit 2."""
    rc, _, err = run(capsys, "status", "--state-dir", str(tmp_path), "--bogus")
    assert_one_clear_line(rc, err, "--bogus")
    assert rc == 2


def test_unknown_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown subcommand is named and the known ones are listed."""
    rc, _, err = run(capsys, "deploy-everything")
    assert_one_clear_line(rc, err, "deploy-everything", "switch")


def test_bad_option_value(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A non-integer --max-parallel is named with its value."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(tmp_path), "--max-parallel", "many",
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert_one_clear_line(rc, err, "--max-parallel", "many")


def test_missing_model(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No MODEL and no PROCMGMT_PROCESSES."""
    monkeypatch.delenv("PROCMGMT_PROCESSES", raising=False)
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path))
    assert_one_clear_line(rc, err, "no processes model given", "PROCMGMT_PROCESSES")


def test_model_file_missing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A model path that does not exist."""
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path), str(tmp_path / "no.py"))
    assert_one_clear_line(rc, err, "no.py: no such model file")


def test_model_directory_without_processes_py(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    """A directory is accepted only when it holds processes.py."""
    (tmp_path / "models").mkdir()
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path / "s"),
                     str(tmp_path / "models"))
    assert_one_clear_line(rc, err, "is a directory without a processes.py")


def test_rollback_without_previous_generation(capsys: pytest.CaptureFixture[str],
                                              deployed_empty: Path) -> None:
    """Generation 1 is current and there is nothing before it."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(deployed_empty), "--rollback")
    assert_one_clear_line(rc, err, "unable to roll back")


def test_rollback_with_nothing_deployed(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    """A fresh state dir has no generation at all."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(tmp_path), "--rollback")
    assert_one_clear_line(rc, err, "unable to roll back")


def test_switch_to_missing_generation(capsys: pytest.CaptureFixture[str],
                                      deployed_empty: Path) -> None:
    """Generation 7 does not exist; the known ones are listed."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(deployed_empty),
                     "--switch-generation", "7")
    assert_one_clear_line(rc, err, "generation 7", "does not exist", "known: 1")


def test_delete_current_generation(capsys: pytest.CaptureFixture[str],
                                   deployed_empty: Path) -> None:
    """The current generation cannot be deleted, and is still there afterwards."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(deployed_empty),
                     "--delete-generations", "1")
    assert_one_clear_line(rc, err, "generation 1 is the current one")
    rc, out, _ = run(capsys, "switch", "--state-dir", str(deployed_empty),
                     "--list-generations")
    assert rc == 0 and "(current)" in out


@pytest.mark.parametrize("spec", ["garbage", "3x", "-1", "1d2", "old,3", ""])
def test_delete_generations_garbage(spec: str, capsys: pytest.CaptureFixture[str],
                                    deployed_empty: Path) -> None:
    """A --delete-generations value that is no generation list, age or 'old'."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(deployed_empty),
                     "--delete-generations", spec)
    assert_one_clear_line(rc, err)
    assert "--delete-generations" in err or "generation" in err


def test_max_parallel_zero(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--max-parallel 0 is refused before anything is built."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(tmp_path), "--max-parallel", "0",
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert_one_clear_line(rc, err, "--max-parallel must be at least 1")
    assert not (tmp_path / "lib").exists() or not any(
        (tmp_path / "lib" / "procmgmt" / "profiles").glob("*-link"))


def test_generate_without_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """generate needs -o."""
    rc, _, err = run(capsys, "generate", "--state-dir", str(tmp_path),
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert_one_clear_line(rc, err, "-o/--output")


def test_run_activity_with_nothing_deployed(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    """Activities need a deployed generation."""
    rc, _, err = run(capsys, "run-activity", "--state-dir", str(tmp_path), "status")
    assert_one_clear_line(rc, err, "nothing is deployed")


def test_run_activity_on_missing_generation(capsys: pytest.CaptureFixture[str],
                                            deployed_empty: Path) -> None:
    """--generation N that does not exist."""
    rc, _, err = run(capsys, "run-activity", "--state-dir", str(deployed_empty),
                     "--generation", "5", "status")
    assert_one_clear_line(rc, err, "generation 5", "does not exist")


def test_unknown_backend(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unknown -P lists the known backends."""
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path), "-P", "upstart",
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert_one_clear_line(rc, err, "unknown process manager 'upstart'", "sysvinit")


def test_bad_extra_params(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--extra-params that is not a JSON object."""
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path), "--extra-params", "{port",
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert_one_clear_line(rc, err, "--extra-params")


@pytest.mark.parametrize(("argv", "needles"), [
    (["stauts"], ["unknown command 'stauts'; did you mean 'status'?"]),
    (["swich", "x.py"], ["unknown command 'swich'; did you mean 'switch'?"]),
    (["status", "--jsn"], ["unrecognized arguments: --jsn; did you mean '--json'?"]),
    (["switch", "--dry-rn", "x.py"], ["did you mean '--dry-run'?"]),
    (["graph", "--format", "dott", "x.py"], ["invalid choice: 'dott'", "did you mean 'dot'?"]),
])
def test_did_you_mean(capsys: pytest.CaptureFixture[str], argv: list[str],
                      needles: list[str]) -> None:
    """A misspelled command, option or choice gets the closest valid one, exit 2."""
    rc, _, err = run(capsys, *argv)
    assert_one_clear_line(rc, err, *needles)
    assert rc == 2


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_start_grace_must_be_seconds(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     value: str) -> None:
    """--start-grace is a finite, non-negative number of seconds, refused before a build."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(tmp_path), "--start-grace", value,
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert_one_clear_line(rc, err, "--start-grace", value)
    assert not (tmp_path / "lib").exists() or not any(
        (tmp_path / "lib" / "procmgmt" / "profiles").glob("*-link"))
