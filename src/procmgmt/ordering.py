"""Activation order derived from dependencies.

Every backend encodes the same two numbers in its own terms: the *rank*
(0 without dependencies, else 1 + the highest rank among the dependencies;
sysvinit sequence numbers and supervisord priorities are built from it) and
a total *start order* sorted by (rank, name), so ties never depend on dict
order. Stop order is the exact reverse.

The sorting itself is the standard library's :class:`graphlib.TopologicalSorter`;
what this module adds is determinism: ties are broken by name, and a cycle is
reported as the first one a name-ordered depth-first search meets, so the same
model always gives the same order and the same message.
"""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Iterable, Mapping

from procmgmt.errors import CycleError


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
    result: dict[str, int] = {}
    # In topological order every dependency's rank is known before it is needed.
    for node in topological_order(graph):
        deps = [result[d] for d in graph[node] if d in graph]
        result[node] = 1 + max(deps) if deps else 0
    return result


def topological_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Dependencies first; among the nodes ready at the same time, by name.

    Dependencies on names outside ``graph`` are ignored (validation reports them)."""
    sorter = graphlib.TopologicalSorter({n: {d for d in graph[n] if d in graph}
                                         for n in graph})
    try:
        sorter.prepare()
    except graphlib.CycleError:
        # graphlib names whichever cycle its insertion order meets first; report
        # the one find_cycle names, as validation does.
        raise CycleError(find_cycle(graph) or []) from None
    ready = list(sorter.get_ready())
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        sorter.done(node)
        for nxt in sorter.get_ready():
            heapq.heappush(ready, nxt)
    return order


def start_order(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Total start order: by (rank, name)."""
    r = ranks(graph)
    return sorted(graph, key=lambda n: (r[n], n))
