"""Ranks, start order and cycle detection."""

from __future__ import annotations

import pytest

from procmgmt.errors import CycleError
from procmgmt.ordering import find_cycle, ranks, start_order, topological_order


def test_ranks_are_one_more_than_deepest_dependency() -> None:
    """rank = 0 without dependencies, else 1 + max rank of the dependencies."""
    g = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": [], "f": ["e", "d"]}
    assert ranks(g) == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0, "f": 3}


def test_start_order_is_total_and_name_tiebroken() -> None:
    """Ties never depend on dict order."""
    g1 = {"b": [], "a": [], "c": ["a", "b"]}
    g2 = {"c": ["b", "a"], "a": [], "b": []}
    assert start_order(g1) == start_order(g2) == ["a", "b", "c"]


def test_topological_order_respects_dependencies() -> None:
    """Every dependency comes before its dependent."""
    g = {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(200)}
    order = topological_order(g)
    assert order == [f"n{i}" for i in range(200)]
    assert ranks(g)["n199"] == 199


def test_cycle_is_named() -> None:
    """A cycle is reported as a -> b -> c -> a."""
    g = {"a": ["c"], "b": ["a"], "c": ["b"], "d": []}
    cycle = find_cycle(g)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"}
    with pytest.raises(CycleError):
        ranks(g)


def test_self_cycle() -> None:
    """A node depending on itself is a cycle of one."""
    assert find_cycle({"a": ["a"]}) == ["a", "a"]


def test_ties_are_broken_by_name_among_the_ready_nodes() -> None:
    """Topological order takes the smallest name among the nodes ready at that
    moment (not the smallest rank first): b frees a before c is taken."""
    g = {"c": [], "b": [], "a": ["b"]}
    assert topological_order(g) == ["b", "a", "c"]
    assert start_order(g) == ["b", "c", "a"]


def test_cycle_error_names_the_name_ordered_cycle() -> None:
    """Whatever cycle graphlib meets first, the error names the one a depth-first
    search in name order finds, the same text validation reports."""
    g = {"d": [], "c": ["b"], "b": ["a"], "a": ["c"], "x": ["x", "d"]}
    with pytest.raises(CycleError) as info:
        topological_order(g)
    assert info.value.cycle == ["a", "c", "b", "a"]
    assert str(info.value) == "a -> c -> b -> a"


def test_unknown_dependencies_are_ignored() -> None:
    """A dependency on a name outside the graph does not order or rank anything."""
    assert ranks({"a": ["missing"], "b": ["a"]}) == {"a": 0, "b": 1}
