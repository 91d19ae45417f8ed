"""CLI behaviour: help everywhere, clear one-line errors for misuse, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from procmgmt.cli.main import build_parser, main
from tests.conftest import EXAMPLES


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse exits for --help/--version/usage errors
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version."""
    rc, out, _ = run(capsys, "--version")
    assert rc == 0 and out.startswith("procmgmt ")


@pytest.mark.parametrize("cmd", sorted(build_parser().subcommands))
def test_help_on_every_subcommand(cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every subcommand has --help listing the shared settings options."""
    rc, out, _ = run(capsys, cmd, "--help")
    assert rc == 0
    assert "--state-dir" in out and "PROCMGMT_STATE_DIR" in out


def test_subcommands_present() -> None:
    """The issue's subcommands all exist."""
    commands = build_parser().subcommands
    for cmd in ("build", "switch", "generate", "run-activity", "init-state", "status", "gc"):
        assert cmd in commands


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown option is a usage error (exit 2) naming the option."""
    rc, _, err = run(capsys, "switch", "--bogus")
    assert rc == 2 and "--bogus" in err


def test_missing_model(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No MODEL and no PROCMGMT_PROCESSES: one clear line, exit 2."""
    monkeypatch.delenv("PROCMGMT_PROCESSES", raising=False)
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path))
    assert rc == 2
    assert "no processes model given" in err
    assert "Traceback" not in err


def test_model_file_not_found(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A model path that does not exist is named."""
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path), str(tmp_path / "nope.py"))
    assert rc == 2 and "nope.py: no such model file" in err


def test_unknown_backend(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """An unknown process manager lists the known ones."""
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path), "-P", "upstart",
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert rc == 2 and "unknown process manager 'upstart'" in err and "sysvinit" in err


def test_rollback_without_previous(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Rolling back with no earlier generation is a clear error, not a traceback."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(tmp_path), "--rollback")
    assert rc == 2 and "unable to roll back" in err


def test_switch_to_missing_generation(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    """Switching to a generation that does not exist names it."""
    rc, _, err = run(capsys, "switch", "--state-dir", str(tmp_path), "--switch-generation", "9")
    assert rc == 2 and "generation 9" in err and "does not exist" in err


def test_bad_extra_params(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--extra-params must be a JSON object."""
    rc, _, err = run(capsys, "build", "--state-dir", str(tmp_path), "--extra-params", "{x",
                     str(EXAMPLES / "webapps" / "processes.py"))
    assert rc == 2 and "--extra-params: not valid JSON" in err


def test_generate_writes_native_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """generate writes one backend's files to a folder without deploying anything."""
    out_dir = tmp_path / "out"
    rc, _, err = run(capsys, "generate", "--state-dir", str(tmp_path / "s"), "-P", "sysvinit",
                       "-o", str(out_dir), str(EXAMPLES / "webapps" / "processes-advanced.py"))
    assert rc == 0, err
    assert (out_dir / "etc" / "rc.d" / "init.d" / "webapp4").is_file()
    assert not (tmp_path / "s" / "lib" / "procmgmt").exists(), "generate must not build/deploy"


def test_list_generations_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Nothing deployed yet: an empty listing."""
    rc, out, _ = run(capsys, "switch", "--state-dir", str(tmp_path), "--list-generations")
    assert rc == 0 and out == ""


def test_status_nothing_deployed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """status with nothing deployed says so."""
    rc, out, _ = run(capsys, "status", "--state-dir", str(tmp_path))
    assert rc == 0 and "nothing deployed" in out


def test_init_state(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """init-state creates the derived directories, idempotently."""
    rc, out, _ = run(capsys, "init-state", "--state-dir", str(tmp_path / "v"))
    assert rc == 0
    for d in ("run", "log", "tmp", "cache", "spool", "lock", "lib"):
        assert (tmp_path / "v" / d).is_dir()
    rc, out, _ = run(capsys, "init-state", "--state-dir", str(tmp_path / "v"))
    assert rc == 0 and out == ""
