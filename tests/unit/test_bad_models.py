"""The corpus of broken models: each gets its expected message, exit 2, no traceback."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from procmgmt.cli.main import main

CORPUS = Path(__file__).resolve().parent.parent / "bad_models"
CASES = sorted(CORPUS.glob("*.py"))
DEFAULT_BACKEND = "sysvinit"


def directives(path: Path, key: str) -> list[str]:
    """The values of a case's ``# <key>:`` lines."""
    prefix = f"# {key}:"
    return [line[len(prefix):].strip() for line in path.read_text().splitlines()
            if line.startswith(prefix)]


def expectations(path: Path) -> list[str]:
    """The ``# expect:`` regexes of a case."""
    return directives(path, "expect")


def command_line(case: Path, state_dir: Path) -> list[str]:
    """``procmgmt build`` for a case: ``# backend: NAME`` picks the backend (values
    only some formats cannot hold), ``# args: ...`` adds options (``{corpus}`` is
    the corpus directory)."""
    backends = directives(case, "backend")
    extra = [a.replace("{corpus}", str(CORPUS))
             for line in directives(case, "args") for a in shlex.split(line)]
    return ["build", "--state-dir", str(state_dir), "-P",
            backends[0] if backends else DEFAULT_BACKEND, *extra, str(case)]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_model(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """procmgmt build reports the mistake with file:line, instance and field; exit 2."""
    patterns = expectations(case)
    assert patterns, f"{case.name} has no '# expect:' line"
    rc = main(command_line(case, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert "internal error" not in err
    for pattern in patterns:
        assert re.search(pattern, err), f"{pattern!r} not found in:\n{err}"


def test_corpus_is_large_enough() -> None:
    """Keep the corpus growing: every reported mistake becomes a case."""
    assert len(CASES) >= 55
