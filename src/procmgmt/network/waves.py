"""Cross-host order: which processes stop, then start, in which waves.

Pure functions over host states (process name -> content hash, plus the
backend). A process whose hash is the same before and after stays; the
others stop (obsolete) or start (new), as in the single-host plan
(:func:`procmgmt.deploy.plan.compute_plan`), but ordered across hosts:

- a wave of stops holds the obsolete processes no remaining obsolete
  process depends on (dependents stop first: reverse dependency order);
- a wave of starts holds the new processes whose dependencies all run.

Each wave runs on its hosts in parallel; the waves run one after another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from procmgmt.errors import CycleError

#: (target, process name)
Node = tuple[str, str]


@dataclass(frozen=True)
class HostState:
    """What runs (or is to run) on one host."""

    backend: str | None
    hashes: Mapping[str, str] = field(default_factory=dict)


def changes(old: HostState, new: HostState) -> tuple[set[str], set[str]]:
    """(obsolete names, new names) of one host."""
    if old.backend != new.backend and old.backend is not None and new.backend is not None:
        return set(old.hashes), set(new.hashes)
    old_h, new_h = set(old.hashes.values()), set(new.hashes.values())
    return ({n for n, h in old.hashes.items() if h not in new_h},
            {n for n, h in new.hashes.items() if h not in old_h})


def _waves(nodes: set[Node], blockers: Mapping[Node, set[Node]]) -> list[set[Node]]:
    """Peel ``nodes`` into waves: a node goes once none of its blockers is left."""
    left = set(nodes)
    waves = []
    while left:
        wave = {n for n in left if not (blockers.get(n, set()) & left)}
        if not wave:
            raise CycleError(sorted(f"{t}:{p}" for t, p in left))
        waves.append(wave)
        left -= wave
    return waves


def stop_waves(obsolete: set[Node], depends: Mapping[Node, set[Node]]) -> list[set[Node]]:
    """Obsolete processes in waves, dependents before their dependencies."""
    dependents: dict[Node, set[Node]] = {}
    for node, deps in depends.items():
        for dep in deps:
            dependents.setdefault(dep, set()).add(node)
    return _waves(obsolete, dependents)


def start_waves(new: set[Node], depends: Mapping[Node, set[Node]]) -> list[set[Node]]:
    """New processes in waves, dependencies before their dependents."""
    return _waves(new, {n: set(d) for n, d in depends.items()})
