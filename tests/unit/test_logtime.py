"""``logs --since``: parsing T, choosing rotated files by their modification times."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from procmgmt.deploy.logtime import files_since, lines_since, parse_since, rotated_files
from procmgmt.errors import UsageError

NOW = 1_800_000_000.0


@pytest.mark.parametrize(("text", "back"), [
    ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5m", 90)])
def test_durations_count_back_from_now(text: str, back: float) -> None:
    assert parse_since(text, NOW) == NOW - back


def test_an_iso_time_is_local_unless_it_names_a_zone() -> None:
    assert parse_since("2026-12-04T12:00:00+00:00", NOW) == datetime.datetime(
        2026, 12, 4, 12, tzinfo=datetime.UTC).timestamp()
    assert parse_since("2026-12-04 12:00", NOW) == datetime.datetime(2026, 12, 4, 12).timestamp()


@pytest.mark.parametrize("text", ["", "10", "5 minutes", "m10", "yesterday"])
def test_anything_else_is_refused_with_the_forms(text: str) -> None:
    with pytest.raises(UsageError, match=r"neither a duration .* nor an ISO time"):
        parse_since(text, NOW)


def _files(tmp_path: Path, ages: dict[str, float]) -> Path:
    """Log files named ``a.log<suffix>`` last written ``age`` seconds before NOW."""
    for suffix, age in ages.items():
        f = tmp_path / f"a.log{suffix}"
        f.write_text(f"line of a.log{suffix}\n")
        os.utime(f, (NOW - age, NOW - age))
    return tmp_path / "a.log"


def test_rotated_files_oldest_first_numbers_as_numbers(tmp_path: Path) -> None:
    log = _files(tmp_path, {"": 0, ".1": 10, ".2": 20, ".10": 100})
    (tmp_path / "a.log.old").write_text("not a rotated file\n")
    assert [Path(f).name for f in rotated_files(str(log))] == [
        "a.log.10", "a.log.2", "a.log.1", "a.log"]
    assert rotated_files(str(tmp_path / "none.log")) == []


def test_files_last_written_before_t_are_left_out(tmp_path: Path) -> None:
    """T falls inside a.log.1 (written from a.log.2's time to its own): from it on."""
    log = _files(tmp_path, {"": 0, ".1": 60, ".2": 600})
    assert [Path(f).name for f in files_since(str(log), NOW - 300)] == ["a.log.1", "a.log"]
    lines, end = lines_since(str(log), NOW - 300, None)
    assert lines == ["line of a.log.1", "line of a.log"] and end == log.stat().st_size
    assert lines_since(str(log), NOW - 300, 1)[0] == ["line of a.log"]


def test_a_current_file_older_than_t_gives_nothing_and_is_followed_from_its_end(
        tmp_path: Path) -> None:
    log = _files(tmp_path, {"": 600})
    assert lines_since(str(log), NOW - 60, None) == ([], log.stat().st_size)
    assert lines_since(str(tmp_path / "none.log"), NOW - 60, None) == ([], 0)
