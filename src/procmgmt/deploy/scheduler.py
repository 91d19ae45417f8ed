"""Dependency-driven parallel execution of start or stop actions.

Each item runs as soon as everything it waits for has *finished*, not level
by level: with a slow dependency on one branch, the other branches go on.

An action has two phases. The *action* itself (run a start script, ask
supervisord to add a program) runs in a worker pool of ``max_parallel``
threads. It may return a *probe*: a non-blocking callable that says whether
the item is finished yet (ready) and raises when it failed. Probes do not
hold a worker: one loop polls every pending probe, so a thousand processes
waiting for their ports cost one thread, and slow-to-become-ready
processes do not keep others from starting.

With ``max_parallel=1`` the items run strictly one after another in the
given order, each waiting for the previous one to be ready (the original's
behaviour, kept for comparison and for managers that need it).

After the first failure nothing new is scheduled; work already under way
finishes, and every failure is reported. The same holds once ``cancel()``
says so (an interrupted switch), except that with ``drain=False`` pending
probes are abandoned: a readiness wait is not worth finishing when the
process is about to be stopped again, while a stop in progress is (whoever
restores the previous generation must not find it half-way down).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

#: A probe returns True once the item is finished, False while it is not; it raises on failure.
Probe = Callable[[], bool]
#: An action does the work and returns a probe (or None: finished when it returns).
Action = Callable[[str], "Probe | None"]

POLL_INTERVAL = 0.02


@dataclass
class Outcome:
    """What happened to the items of one run."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)
    #: Names never finished because the run was cancelled (not started, or abandoned).
    cancelled: list[str] = field(default_factory=list)
    #: name -> (began, finished) on the monotonic clock
    times: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing failed and nothing was cancelled."""
        return not self.failed and not self.cancelled


def run_dag(order: Sequence[str], waits_for: Mapping[str, set[str]],
            action: Action, max_parallel: int, *, cancel: Callable[[], bool] | None = None,
            drain: bool = True) -> Outcome:
    """Run ``action(name)`` for every name; a name waits for ``waits_for[name]`` (within
    ``order``) to finish. ``order`` is the preferred order among the runnable ones.
    Once ``cancel()`` is true nothing new begins (and, unless ``drain``, pending
    probes are abandoned); what never finished is listed in ``Outcome.cancelled``."""
    pending = list(order)
    names = set(order)
    blockers = {n: {d for d in waits_for.get(n, set()) if d in names and d != n} for n in order}
    outcome = Outcome()
    finished: set[str] = set()
    began: dict[str, float] = {}
    lock = threading.Lock()
    running: dict[Future[Probe | None], str] = {}
    probing: dict[str, Probe] = {}
    sequential = max_parallel <= 1

    def finish(name: str, exc: BaseException | None) -> None:
        with lock:
            outcome.times[name] = (began.get(name, time.monotonic()), time.monotonic())
        if exc is None:
            finished.add(name)
            outcome.done.append(name)
        else:
            outcome.failed[name] = exc

    def timed(name: str) -> Probe | None:
        with lock:
            began[name] = time.monotonic()
        return action(name)

    with ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        while pending or running or probing:
            stopping = cancel is not None and cancel()
            if stopping and not drain and probing:
                outcome.cancelled.extend(probing)
                probing.clear()
            if not outcome.failed and not stopping:
                for name in list(pending):
                    busy = len(running) + (len(probing) if sequential else 0)
                    if busy >= max(1, max_parallel):
                        break
                    if blockers[name] <= finished:
                        pending.remove(name)
                        running[pool.submit(timed, name)] = name
                    elif sequential:
                        break  # strict order: never overtake
            if not running and not probing:
                break
            if running:
                done, _ = wait(list(running), timeout=POLL_INTERVAL if probing else None,
                               return_when=FIRST_COMPLETED)
                for fut in done:
                    name = running.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        finish(name, exc)
                        continue
                    probe = fut.result()
                    if probe is None:
                        finish(name, None)
                    else:
                        probing[name] = probe
            else:
                time.sleep(POLL_INTERVAL)
            for name, probe in list(probing.items()):
                try:
                    ready = probe()
                except Exception as exc:
                    del probing[name]
                    finish(name, exc)
                    continue
                if ready:
                    del probing[name]
                    finish(name, None)
    if cancel is not None and cancel():
        outcome.cancelled.extend(pending)
    return outcome


def reverse_waits(deps: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """For stopping: each name waits for the names that depend on it."""
    result: dict[str, set[str]] = {n: set() for n in deps}
    for name, ds in deps.items():
        for d in ds:
            result.setdefault(d, set()).add(name)
    return result
