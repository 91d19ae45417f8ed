"""The corpus of broken models: each gets its expected message, exit 2, no traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from procmgmt.cli.main import main

CORPUS = Path(__file__).resolve().parent.parent / "bad_models"
CASES = sorted(CORPUS.glob("*.py"))


def expectations(path: Path) -> list[str]:
    """The ``# expect:`` regexes of a case."""
    return [line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith("# expect:")]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_model(case: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """procmgmt build reports the mistake with file:line, instance and field; exit 2."""
    patterns = expectations(case)
    assert patterns, f"{case.name} has no '# expect:' line"
    rc = main(["build", "--state-dir", str(tmp_path), "-P", "sysvinit", str(case)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    for pattern in patterns:
        assert re.search(pattern, err), f"{pattern!r} not found in:\n{err}"


def test_corpus_is_large_enough() -> None:
    """Keep the corpus growing: every reported mistake becomes a case."""
    assert len(CASES) >= 20
