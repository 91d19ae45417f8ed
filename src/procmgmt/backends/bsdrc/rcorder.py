"""A small rcorder(8): order BSD rc scripts by their PROVIDE/REQUIRE/BEFORE headers.

FreeBSD boots (and ``nixproc-bsdrc-deploy`` deployed) in the order that
``rcorder`` prints for the scripts' comment headers, not in the order of
the model's dependency list. rcorder is not available on Linux, so this
module re-implements the documented semantics (rcorder(8)) to check that
what procmgmt renders orders the same way the model says:

- Each script's header is read by :mod:`.parse`.
- ``REQUIRE: x`` puts the file after every file that provides ``x``;
  ``BEFORE: x`` puts it before every file that provides ``x``.
- A requirement nobody provides is a warning, not an error (FreeBSD's
  rcorder warns and goes on); a circular dependency is reported and broken
  at the edge where it was found, like rcorder does, so the caller still
  gets an order but must treat ``cycles`` as an error.
- ``keep`` / ``skip`` keyword lists work like ``-k`` / ``-s``.

Files are visited in the order given (rcorder visits its arguments, which
the shell passes sorted) and each file's providers of its requirements are
placed first, depth first. Ties between independent files therefore follow
the argument order; callers that need procmgmt's (rank, name) order compare
*validity* with :func:`is_valid_order`, not equality.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from procmgmt.backends.bsdrc.parse import RcScript, parse_file


@dataclass
class RcOrder:
    """rcorder's answer: the order plus its diagnostics."""

    #: Scripts in start order (stop order is the reverse).
    order: list[RcScript]
    #: Each cycle found, as the script names along it, ending where it started.
    cycles: list[list[str]] = field(default_factory=list)
    #: (script name, requirement) pairs whose requirement nobody provides.
    missing: list[tuple[str, str]] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """The ordered script paths (what rcorder prints)."""
        return [s.path for s in self.order]

    def messages(self) -> list[str]:
        """rcorder-style diagnostics."""
        out = [f"rcorder: requirement `{req}' in file `{name}' has no providers."
               for name, req in self.missing]
        out += [f"rcorder: Circular dependency on file `{c[0]}': " + " -> ".join(c)
                for c in self.cycles]
        return out


def rcorder(scripts: Sequence[RcScript], keep: Iterable[str] = (),
            skip: Iterable[str] = ()) -> RcOrder:
    """Order ``scripts`` like rcorder(8); cycles and missing providers are reported."""
    keep_set, skip_set = set(keep), set(skip)
    providers: dict[str, list[int]] = {}
    for i, s in enumerate(scripts):
        for cond in s.provides:
            providers.setdefault(cond, []).append(i)
    # Edges as "i must come after j", each labelled with the condition that caused it.
    after: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(scripts))}
    result = RcOrder(order=[])
    for i, s in enumerate(scripts):
        for req in s.requires:
            if req not in providers:
                result.missing.append((s.name, req))
            for j in providers.get(req, []):
                if j != i:
                    after[i].append((req, j))
        for cond in s.before:
            for j in providers.get(cond, []):
                if j != i:
                    # j requires i; labelled with i's first provision (or its name).
                    after[j].append((s.provides[0] if s.provides else s.name, i))
    done: set[int] = set()
    placed: list[int] = []
    for root in range(len(scripts)):
        if root in done:
            continue
        # Iterative depth-first search; ``on_path`` maps a node on the current
        # path to its index in ``trail`` (the script names along the path).
        on_path: dict[int, int] = {root: 0}
        trail: list[str] = [scripts[root].name]
        stack: list[tuple[int, list[tuple[str, int]]]] = [(root, list(after[root]))]
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                on_path.pop(node, None)
                trail.pop()
                if node not in done:
                    done.add(node)
                    placed.append(node)
                continue
            _cond, nxt = pending.pop(0)
            if nxt in done:
                continue
            if nxt in on_path:
                start = on_path[nxt]
                result.cycles.append([*trail[start:], scripts[nxt].name])
                continue
            on_path[nxt] = len(trail)
            trail.append(scripts[nxt].name)
            stack.append((nxt, list(after[nxt])))
    for i in placed:
        kw = set(scripts[i].keywords)
        if keep_set and not kw & keep_set:
            continue
        if kw & skip_set:
            continue
        result.order.append(scripts[i])
    return result


def order_files(paths: Sequence[str], keep: Iterable[str] = (),
                skip: Iterable[str] = ()) -> RcOrder:
    """rcorder over files, in the order given."""
    return rcorder([parse_file(p) for p in paths], keep, skip)


def dependency_graph(scripts: Sequence[RcScript]) -> dict[str, set[str]]:
    """script name -> names of the scripts it must follow (REQUIRE and BEFORE resolved)."""
    providers: dict[str, list[str]] = {}
    for s in scripts:
        for cond in s.provides:
            providers.setdefault(cond, []).append(s.name)
    graph: dict[str, set[str]] = {s.name: set() for s in scripts}
    for s in scripts:
        for req in s.requires:
            graph[s.name].update(p for p in providers.get(req, []) if p != s.name)
        for cond in s.before:
            for p in providers.get(cond, []):
                if p != s.name:
                    graph[p].add(s.name)
    return graph


def is_valid_order(order: Sequence[str], graph: Mapping[str, Iterable[str]]) -> bool:
    """True when ``order`` lists every node of ``graph`` once, each after what it follows."""
    if sorted(order) != sorted(graph):
        return False
    position = {name: i for i, name in enumerate(order)}
    return all(position[dep] < position[name]
               for name, deps in graph.items() for dep in deps if dep in position)


def violations(order: Sequence[str], graph: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
    """(name, dependency) pairs where ``order`` starts ``name`` before ``dependency``."""
    position = {name: i for i, name in enumerate(order)}
    return sorted((name, dep) for name, deps in graph.items() for dep in deps
                  if name in position and dep in position and position[dep] > position[name])
