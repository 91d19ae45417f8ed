"""Activation order derived from dependencies.

Every backend encodes the same two numbers in its own terms: the *rank*
(0 without dependencies, else 1 + the highest rank among the dependencies;
sysvinit sequence numbers and supervisord priorities are built from it) and
a total *start order* sorted by (rank, name), so ties never depend on dict
order. Stop order is the exact reverse.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping


class CycleError(Exception):
    """A dependency cycle; ``cycle`` lists the names, first == last."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


def find_cycle(graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """One dependency cycle as ``[a, b, ..., a]``, or None if the graph is acyclic."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for root in sorted(graph):
        if color[root] != white:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        path = [root]
        color[root] = grey
        while stack:
            node, pending = stack[-1]
            if not pending:
                color[node] = black
                stack.pop()
                path.pop()
                continue
            nxt = pending.pop(0)
            if nxt not in color:
                continue
            if color[nxt] == grey:
                return [*path[path.index(nxt):], nxt]
            if color[nxt] == white:
                color[nxt] = grey
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def ranks(graph: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Rank of every node; raises :class:`CycleError` on a cycle."""
    cycle = find_cycle(graph)
    if cycle:
        raise CycleError(cycle)
    result: dict[str, int] = {}

    def rank(node: str) -> int:
        if node not in result:
            deps = [d for d in graph[node] if d in graph]
            result[node] = 1 + max(rank(d) for d in deps) if deps else 0
        return result[node]

    # Iterative deepening would avoid recursion, but ranks are computed in
    # dependency order below so the recursion depth stays at one.
    for node in topological_order(graph):
        rank(node)
    return result


def topological_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependencies first; ties broken by name (Kahn's algorithm)."""
    deps = {n: {d for d in graph[n] if d in graph} for n in graph}
    dependents: dict[str, list[str]] = {n: [] for n in graph}
    for n, ds in deps.items():
        for d in ds:
            dependents[d].append(n)
    missing = {n: len(ds) for n, ds in deps.items()}
    ready = [n for n, c in missing.items() if c == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        n = heapq.heappop(ready)
        order.append(n)
        for m in dependents[n]:
            missing[m] -= 1
            if missing[m] == 0:
                heapq.heappush(ready, m)
    if len(order) != len(graph):
        cycle = find_cycle(graph) or []
        raise CycleError(cycle)
    return order


def start_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Total start order: by (rank, name)."""
    r = ranks(graph)
    return sorted(graph, key=lambda n: (r[n], n))
