"""Ranks, start order and cycle detection."""

from __future__ import annotations

import pytest

from procmgmt.ordering import CycleError, find_cycle, ranks, start_order, topological_order


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
