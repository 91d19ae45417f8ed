"""BuildContext's dependents index: computed once per context, sorted, never stale."""

from __future__ import annotations

import dataclasses

import pytest

from procmgmt.backends.base import BuildContext
from procmgmt.model.spec import ProcessSpec
from tests.conftest import golden_settings


def spec(name: str, *deps: str) -> ProcessSpec:
    return ProcessSpec(name=name, description=name, foreground=f"/bin/{name}",
                       dependencies=deps)


def test_dependents_are_the_sorted_names_that_depend_on_a_process() -> None:
    specs = [spec("db"), spec("web", "db", "cache"), spec("api", "db"), spec("cache")]
    ctx = BuildContext(golden_settings(False), {s.name: s for s in specs})
    assert ctx.dependents("db") == ("api", "web")
    assert ctx.dependents("cache") == ("web",)
    assert ctx.dependents("web") == ()
    assert ctx.dependents("unknown") == ()


def test_each_context_has_its_own_index_and_cannot_be_repointed() -> None:
    """Two models rendered one after the other do not share an index (the old
    module-level cache kept only the last one), and a frozen context cannot be
    given other specs behind its index's back."""
    one = BuildContext(golden_settings(False), {"a": spec("a"), "b": spec("b", "a")})
    two = BuildContext(golden_settings(False), {"a": spec("a"), "c": spec("c", "a")})
    assert one.dependents("a") == ("b",)
    assert two.dependents("a") == ("c",)
    assert one.dependents("a") == ("b",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.specs = {}  # type: ignore[misc]


def test_warnings_still_collect() -> None:
    ctx = BuildContext(golden_settings(False), {})
    ctx.warn(spec("a"), "launchd", "no nice")
    assert ctx.warnings == ["launchd: a: no nice"]
