"""Generations: numbering, current pointer, rollback target, deletion specs."""

from __future__ import annotations

import os
import time

import pytest

from procmgmt.deploy.profile import Profile
from procmgmt.errors import GenerationError, UsageError
from procmgmt.settings import resolve


def make(tmp_path: object) -> Profile:
    return Profile(resolve({"state_dir": str(tmp_path)}, {}))


def test_numbering_and_current(tmp_path: object) -> None:
    """Each add makes a new numbered generation current."""
    p = make(tmp_path)
    assert p.current_number() is None
    assert p.add("/store/a") == 1
    assert p.add("/store/b") == 2
    assert p.current_number() == 2
    assert p.current_path() == "/store/b"
    assert p.previous_number() == 1
    p.set_current(1)
    assert p.current_path() == "/store/a"
    with pytest.raises(GenerationError, match="no generation before"):
        p.previous_number()


def test_missing_generation(tmp_path: object) -> None:
    """Switching to an unknown generation names the known ones."""
    p = make(tmp_path)
    p.add("/store/a")
    with pytest.raises(GenerationError, match=r"generation 7 .* does not exist"):
        p.path_of(7)


def test_delete_specs(tmp_path: object) -> None:
    """'old', 'Nd' and numbers select generations; the current one is protected."""
    p = make(tmp_path)
    for i in range(4):
        p.add(f"/store/{i}")
    assert p.select("old") == [1, 2, 3]
    old_link = p.generations()[0].link
    past = time.time() - 3 * 86400
    os.utime(old_link, (past, past), follow_symlinks=False)
    assert p.select("2d") == [1]
    assert p.select("2,3") == [2, 3]
    with pytest.raises(GenerationError, match="current"):
        p.select("4")
    with pytest.raises(UsageError):
        p.select("yesterday")
    assert p.delete([1, 2]) == [1, 2]
    assert [g.number for g in p.generations()] == [3, 4]
    p.delete_all()
    assert p.generations() == [] and p.current_number() is None
