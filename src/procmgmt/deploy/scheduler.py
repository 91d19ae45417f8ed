"""Dependency-driven parallel execution of start or stop actions.

Each item runs as soon as everything it waits for has *finished*, not level
by level: with a slow dependency on one branch, the other branches go on.

An action has two phases. The *action* itself (run a start script, ask
supervisord to add a program) runs in a worker pool of ``max_parallel``
threads. It may return a *probe*: a non-blocking callable that says whether
the item is finished yet (ready) and raises when it failed. Probes do not
hold a worker: one loop watches every pending probe, so a thousand processes
waiting for their ports cost one thread, and slow-to-become-ready
processes do not keep others from starting.

The loop sleeps in one selector. A finished action wakes it through a pipe,
and a :class:`Watched` probe names sources (file descriptors) that become
readable when it may have become ready (an inotify watch on its log file, its
notification socket): the probe is asked the moment one fires, not at the
next tick of a timer. Probes without a descriptor are polled every
:data:`POLL_INTERVAL`; watched ones too, every :data:`FALLBACK_INTERVAL`, so a
missed event costs latency, never a hang (their timeouts still fire).

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

import contextlib
import heapq
import os
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

#: A probe returns True once the item is finished, False while it is not; it raises on failure.
Probe = Callable[[], bool]
#: An action does the work and returns a probe (or None: finished when it returns).
Action = Callable[[str], "Probe | None"]

#: How often a probe without a file descriptor to wait on is asked.
POLL_INTERVAL = 0.02
#: How often a :class:`Watched` probe is asked without an event: its safety net
#: (an event lost or never sent, a timeout or a dead process to notice).
FALLBACK_INTERVAL = 0.25


class EventSource(Protocol):
    """Something to wait on: a descriptor that becomes readable when a probe may have
    become ready, and how to consume what made it readable (called once per wake-up,
    before the probes waiting on it are asked, so that one source shared by many
    probes cannot lose an event to a probe asked before it arrived)."""

    def fileno(self) -> int:
        """The descriptor (negative: closed, nothing to wait on)."""

    def drain(self) -> None:
        """Read what is pending, for the probes to look at."""


def _never() -> float | None:
    return None


@dataclass(frozen=True)
class Watched:
    """A probe that says what to wait on: ``sources()`` at this moment; they may
    change from one call to the next (a probe that first waits for a process to
    start, then for its log line). None means: poll me.

    ``not_before()`` is the monotonic time before which asking cannot succeed
    (a start grace: a thousand processes in their 0.2-s grace were each asked
    ten times for nothing, 0.7 s of the engine's CPU in a start of 1,000);
    None: no such time."""

    check: Probe
    sources: Callable[[], Sequence[EventSource]]
    not_before: Callable[[], float | None] = _never

    def __call__(self) -> bool:
        return self.check()


def watched_sources(probe: Probe) -> Sequence[EventSource]:
    """What ``probe`` waits on now (nothing for a plain probe)."""
    return probe.sources() if isinstance(probe, Watched) else ()


def not_before(probe: Probe) -> float | None:
    """The earliest time worth asking ``probe`` again (None: its usual interval)."""
    return probe.not_before() if isinstance(probe, Watched) else None


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


class _Waiter:
    """The one place the loop sleeps: a selector over a wake-up pipe (written by
    finished actions) and the sources of the pending probes, shared among probes
    that wait on the same one (one inotify instance for many log files)."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.selector.register(self.rfd, selectors.EVENT_READ)
        #: In the main thread a signal wakes the loop too (a SIGINT that cancels
        #: the run is seen at once, not when a worker or a probe next is due):
        #: the descriptor set before, restored by :meth:`close`.
        self.previous_wakeup: int | None = None
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError):
                self.previous_wakeup = signal.set_wakeup_fd(self.wfd,
                                                            warn_on_full_buffer=False)
        #: descriptor -> its source and the names waiting on it
        self.users: dict[int, tuple[EventSource, set[str]]] = {}
        self.name_fds: dict[str, frozenset[int]] = {}

    def wake(self, _fut: object = None) -> None:
        """Called from worker threads when an action finished."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.wfd, b"\0")

    def watch(self, name: str, sources: Sequence[EventSource]) -> None:
        """Wait on ``sources`` for ``name`` (none: stop waiting on anything for it)."""
        by_fd = {fd: src for src in sources if (fd := src.fileno()) >= 0}
        old = self.name_fds.get(name, frozenset())
        new = frozenset(by_fd)
        if new == old:
            return
        for fd in old - new:
            self._drop(name, fd)
        for fd in new - old:
            if fd not in self.users:
                try:
                    self.selector.register(fd, selectors.EVENT_READ)
                except (OSError, ValueError, KeyError):
                    new = new - {fd}
                    continue
                self.users[fd] = (by_fd[fd], set())
            self.users[fd][1].add(name)
        if new:
            self.name_fds[name] = new
        else:
            self.name_fds.pop(name, None)

    def _drop(self, name: str, fd: int) -> None:
        entry = self.users.get(fd)
        if entry is None:
            return
        entry[1].discard(name)
        if not entry[1]:
            del self.users[fd]
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.selector.unregister(fd)

    def forget(self, name: str) -> None:
        """``name`` no longer waits on anything."""
        self.watch(name, ())

    def wait(self, timeout: float | None) -> set[str]:
        """Sleep until an action finished, a watched source fired or ``timeout``
        passed; each fired source is drained once; the names waiting on them."""
        fired: set[str] = set()
        for key, _ in self.selector.select(timeout):
            if key.fd == self.rfd:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.rfd, 4096):
                        pass
            elif key.fd in self.users:
                source, names = self.users[key.fd]
                source.drain()
                fired |= names
        return fired

    def close(self) -> None:
        if self.previous_wakeup is not None:
            # Never left pointing at the pipe closed below (a signal would then
            # write into whatever file reuses its number): the one set before,
            # or none when that one is no longer valid.
            try:
                signal.set_wakeup_fd(self.previous_wakeup, warn_on_full_buffer=False)
            except (ValueError, OSError):
                signal.set_wakeup_fd(-1)
        self.selector.close()
        os.close(self.rfd)
        os.close(self.wfd)


@contextlib.contextmanager
def _waiter() -> Iterator[_Waiter]:
    waiter = _Waiter()
    try:
        yield waiter
    finally:
        waiter.close()


def run_dag(order: Sequence[str], waits_for: Mapping[str, set[str]],
            action: Action, max_parallel: int, *, cancel: Callable[[], bool] | None = None,
            drain: bool = True, inline: Callable[[str], bool] | None = None) -> Outcome:
    """Run ``action(name)`` for every name; a name waits for ``waits_for[name]`` (within
    ``order``) to finish. ``order`` is the preferred order among the runnable ones.
    Once ``cancel()`` is true nothing new begins (and, unless ``drain``, pending
    probes are abandoned); what never finished is listed in ``Outcome.cancelled``.

    ``inline(name)`` true: the action never blocks, and runs on this thread as
    soon as the name may begin, without a worker (and without counting against
    ``max_parallel``, which bounds blocking work); not with ``max_parallel=1``,
    whose strict order it would not keep."""
    pending = list(order)
    names = set(order)
    blockers = {n: {d for d in waits_for.get(n, set()) if d in names and d != n} for n in order}
    outcome = Outcome()
    finished: set[str] = set()
    began: dict[str, float] = {}
    lock = threading.Lock()
    running: dict[Future[Probe | None], str] = {}
    probing: dict[str, Probe] = {}
    #: When each probing name is next due without an event, and a heap of
    #: (due, name) to find the due ones without scanning every pending probe
    #: (entries whose time no longer matches ``due`` are stale and skipped).
    due: dict[str, float] = {}
    agenda: list[tuple[float, str]] = []
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

    def cancelled() -> bool:
        return cancel is not None and cancel()

    def abandoning() -> bool:
        """Cancelled, and pending probes are to be abandoned (``drain=False``)."""
        return not drain and cancelled()

    def failed(name: str, exc: BaseException) -> None:
        """An action or a probe raised: a failure, or a cancellation when the run
        was interrupted meanwhile and abandons its waits (an action or probe can
        take a while, e.g. a manager slow to answer: a readiness timeout it found
        on return is moot, the wait was abandoned before it)."""
        if abandoning():
            outcome.cancelled.append(name)
        else:
            finish(name, exc)

    def ask(name: str, probe: Probe, now: float) -> None:
        """Call one probe; finish it, or note what it waits on and when it is due."""
        try:
            ready = probe()
        except Exception as exc:
            del probing[name]
            waiter.forget(name)
            failed(name, exc)
            return
        if ready:
            del probing[name]
            waiter.forget(name)
            finish(name, None)
            return
        waiter.watch(name, watched_sources(probe))
        when = now + (FALLBACK_INTERVAL if waiter.name_fds.get(name) else POLL_INTERVAL)
        hint = not_before(probe)
        if hint is not None and hint > when:
            when = hint
        due[name] = when
        heapq.heappush(agenda, (when, name))

    def next_due() -> float | None:
        """The earliest time a pending probe is due (stale heap entries dropped)."""
        while agenda and (agenda[0][1] not in probing or due.get(agenda[0][1]) != agenda[0][0]):
            heapq.heappop(agenda)
        return agenda[0][0] if agenda else None

    #: Probes of actions run inline since the loop last asked: asked at once.
    fresh: list[str] = []

    def run_inline(name: str) -> bool:
        """Run one inline action here; True when it finished the item (which may
        let others begin)."""
        try:
            probe = timed(name)
        except Exception as exc:
            failed(name, exc)
            return False
        if probe is None:
            finish(name, None)
            return True
        probing[name] = probe
        fresh.append(name)
        return False

    def launch() -> None:
        """Begin what may begin now, in ``order``: inline actions here, the others
        in the workers while one is free."""
        again = True
        while again:
            again = False
            for name in list(pending):
                if outcome.failed or cancelled():
                    return
                if not blockers[name] <= finished:
                    if sequential:
                        break  # strict order: never overtake
                    continue
                if inline is not None and not sequential and inline(name):
                    pending.remove(name)
                    again |= run_inline(name)
                    continue
                busy = len(running) + (len(probing) if sequential else 0)
                if busy >= max(1, max_parallel):
                    if inline is None:
                        break
                    continue  # an inline action further on may still begin
                pending.remove(name)
                fut = pool.submit(timed, name)
                running[fut] = name
                fut.add_done_callback(waiter.wake)

    # The pool shuts down (its workers finished) before the waiter closes: a late
    # wake-up must not write into a descriptor number already reused.
    with _waiter() as waiter, ThreadPoolExecutor(max_workers=max(1, max_parallel)) as pool:
        while pending or running or probing:
            if abandoning() and probing:
                outcome.cancelled.extend(probing)
                for name in probing:
                    waiter.forget(name)
                probing.clear()
                due.clear()
            launch()
            if not running and not probing:
                break
            soonest = next_due()
            timeout = None if soonest is None else max(0.0, soonest - time.monotonic())
            asked = waiter.wait(0.0 if fresh else timeout)
            for fut in [f for f in running if f.done()]:
                name = running.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    failed(name, exc)
                    continue
                probe = fut.result()
                if probe is None:
                    finish(name, None)
                else:
                    probing[name] = probe
                    asked.add(name)  # at once: it may be ready already
            # A freed worker gets its next item before the probe round, which may
            # take a while with many probes due.
            launch()
            asked.update(fresh)
            fresh.clear()
            now = time.monotonic()
            while (soonest := next_due()) is not None and soonest <= now:
                asked.add(heapq.heappop(agenda)[1])
            for name in asked:
                if name in probing and not abandoning():
                    ask(name, probing[name], now)
            for name in [n for n in asked if n not in probing]:
                due.pop(name, None)
    if cancelled():
        outcome.cancelled.extend(pending)
    return outcome


def reverse_waits(deps: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """For stopping: each name waits for the names that depend on it."""
    result: dict[str, set[str]] = {n: set() for n in deps}
    for name, ds in deps.items():
        for d in ds:
            result.setdefault(d, set()).add(name)
    return result
