"""Dependency-driven parallel execution of start or stop actions.

Each item runs as soon as everything it waits for has finished, not level
by level: with a slow dependency on one branch, the other branches go on.
At most ``max_parallel`` actions run at once; with ``max_parallel=1`` the
items run strictly one after another in the given order (the original's
behaviour, kept for comparison and for managers that need it).

After the first failure nothing new is scheduled; actions already running
finish, and every failure is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field


@dataclass
class Outcome:
    """What happened to the items of one run."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)
    #: name -> (began, finished) on the monotonic clock
    times: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failed


def run_dag(order: Sequence[str], waits_for: Mapping[str, set[str]],
            action: Callable[[str], None], max_parallel: int) -> Outcome:
    """Run ``action(name)`` for every name; a name waits for ``waits_for[name]`` (within
    ``order``). ``order`` is the preferred order among the runnable ones."""
    pending = list(order)
    names = set(order)
    blockers = {n: {d for d in waits_for.get(n, set()) if d in names and d != n} for n in order}
    outcome = Outcome()
    finished: set[str] = set()
    lock = threading.Lock()

    def timed(name: str) -> None:
        began = time.monotonic()
        try:
            action(name)
        finally:
            with lock:
                outcome.times[name] = (began, time.monotonic())

    running: dict[Future[None], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        while pending or running:
            if not outcome.failed:
                for name in list(pending):
                    if len(running) >= max_parallel:
                        break
                    if blockers[name] <= finished:
                        pending.remove(name)
                        running[pool.submit(timed, name)] = name
            if not running:
                break
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                name = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    finished.add(name)
                    outcome.done.append(name)
                else:
                    outcome.failed[name] = exc
    return outcome


def reverse_waits(deps: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """For stopping: each name waits for the names that depend on it."""
    result: dict[str, set[str]] = {n: set() for n in deps}
    for name, ds in deps.items():
        for d in ds:
            result.setdefault(d, set()).add(name)
    return result
