"""The scheduler waits on events, not on a timer.

A :class:`Watched` probe is asked the moment its descriptor becomes readable;
without an event it is still asked on the (slow) fallback timer, so a lost
event costs latency, never a hang. The timers are stretched in these tests
(``POLL_INTERVAL`` to 2 s) so that a loop which polls instead of waiting on
the descriptor fails them by a wide margin whatever the machine's load.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from procmgmt.deploy import scheduler
from procmgmt.deploy.scheduler import Watched, run_dag


@pytest.fixture
def slow_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polling so slow that only an event can explain a quick answer."""
    monkeypatch.setattr(scheduler, "POLL_INTERVAL", 2.0)
    monkeypatch.setattr(scheduler, "FALLBACK_INTERVAL", 2.0)


@pytest.fixture
def pipes() -> Iterator[Callable[[], tuple[int, int]]]:
    """New pipes, all closed at the end."""
    made: list[int] = []

    def new() -> tuple[int, int]:
        r, w = os.pipe()
        made.extend((r, w))
        return r, w

    yield new
    for fd in made:
        os.close(fd)


class Source:
    """A pipe's read end as an event source; ``drains`` counts the scheduler's drains."""

    def __init__(self, fd: int, consume: bool = False) -> None:
        self.fd = fd
        self.consume = consume
        self.drains = 0

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> None:
        self.drains += 1
        if self.consume:
            os.set_blocking(self.fd, False)
            with contextlib.suppress(BlockingIOError):
                os.read(self.fd, 100)


def _readable(fd: int) -> bool:
    os.set_blocking(fd, False)
    try:
        return bool(os.read(fd, 1))
    except BlockingIOError:
        return False


def test_an_event_is_noticed_at_once(slow_timers: None,
                                     pipes: Callable[[], tuple[int, int]]) -> None:
    """a's probe waits on a pipe written 0.1 s after it began; b (waiting for a)
    begins within a few milliseconds of the write, not at the next 2 s poll."""
    r, w = pipes()
    wrote: list[float] = []
    began: dict[str, float] = {}

    def write_later() -> None:
        time.sleep(0.1)
        wrote.append(time.monotonic())
        os.write(w, b"x")

    def action(name: str) -> Watched | None:
        began[name] = time.monotonic()
        if name != "a":
            return None
        threading.Thread(target=write_later, daemon=True).start()
        return Watched(lambda: _readable(r), lambda: (Source(r),))

    t0 = time.monotonic()
    out = run_dag(["a", "b"], {"b": {"a"}}, action, 4)
    assert out.ok and out.done == ["a", "b"]
    assert began["b"] - wrote[0] < 0.5, "b began long after a's event: the loop polled"
    assert time.monotonic() - t0 < 1.0


def test_one_descriptor_shared_by_many_probes(slow_timers: None,
                                              pipes: Callable[[], tuple[int, int]]) -> None:
    """Probes sharing one source (one inotify instance for many log files) are all
    asked when it fires; the scheduler drains it once, before asking any of them."""
    r, w = pipes()
    source = Source(r, consume=True)
    fired = threading.Event()

    def action(name: str) -> Watched:
        return Watched(fired.is_set, lambda: (source,))

    def fire() -> None:
        time.sleep(0.1)
        fired.set()
        os.write(w, b"x")

    threading.Thread(target=fire, daemon=True).start()
    t0 = time.monotonic()
    out = run_dag(["a", "b", "c"], {}, action, 4)
    assert sorted(out.done) == ["a", "b", "c"]
    assert time.monotonic() - t0 < 1.0
    assert source.drains == 1  # once for all three, before any of them was asked


def test_a_silent_descriptor_falls_back_to_polling(monkeypatch: pytest.MonkeyPatch,
                                                   pipes: Callable[[], tuple[int, int]]) -> None:
    """A probe whose descriptor never fires still finishes (and still times out) through
    the fallback timer: a missed event must never hang a switch."""
    monkeypatch.setattr(scheduler, "FALLBACK_INTERVAL", 0.05)
    r, _w = pipes()
    calls = {"ok": 0, "late": 0}
    t0 = time.monotonic()

    def ready_after(name: str, seconds: float) -> Callable[[], bool]:
        def probe() -> bool:
            calls[name] += 1
            if name == "late" and time.monotonic() - t0 > seconds:
                raise TimeoutError("late: timed out")
            return name == "ok" and time.monotonic() - t0 > seconds
        return probe

    def action(name: str) -> Watched:
        return Watched(ready_after(name, 0.3), lambda: (Source(r),))

    out = run_dag(["ok", "late"], {}, action, 4)
    assert out.done == ["ok"]
    assert isinstance(out.failed["late"], TimeoutError)
    assert time.monotonic() - t0 < 2.0
    assert calls["ok"] >= 3  # asked again and again by the timer alone


def test_watched_probes_are_not_polled_at_the_fast_rate(
        monkeypatch: pytest.MonkeyPatch, pipes: Callable[[], tuple[int, int]]) -> None:
    """Waiting on a descriptor replaces the fast poll: a watched probe is asked when it
    begins and when its descriptor fires, while an unwatched one beside it is polled."""
    monkeypatch.setattr(scheduler, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(scheduler, "FALLBACK_INTERVAL", 5.0)
    r, w = pipes()
    calls = {"watched": 0, "polled": 0}
    t0 = time.monotonic()

    def polled() -> bool:
        calls["polled"] += 1
        return time.monotonic() - t0 > 0.3

    def watched() -> bool:
        calls["watched"] += 1
        return _readable(r)

    def action(name: str) -> Callable[[], bool]:
        if name == "watched":
            threading.Timer(0.35, lambda: os.write(w, b"x")).start()
            return Watched(watched, lambda: (Source(r),))
        return polled

    out = run_dag(["watched", "polled"], {}, action, 4)
    assert sorted(out.done) == ["polled", "watched"]
    assert time.monotonic() - t0 < 2.0
    assert calls["polled"] >= 5
    assert calls["watched"] == 2  # when it began, and when its pipe was written


def test_descriptors_may_change_between_calls(monkeypatch: pytest.MonkeyPatch,
                                              pipes: Callable[[], tuple[int, int]]) -> None:
    """A probe with nothing to wait on at first (its process not started yet) is
    polled; once it names a descriptor the loop waits on that one instead."""
    monkeypatch.setattr(scheduler, "POLL_INTERVAL", 0.02)
    monkeypatch.setattr(scheduler, "FALLBACK_INTERVAL", 5.0)
    r, w = pipes()
    calls = {"n": 0}

    def probe() -> bool:
        calls["n"] += 1
        return _readable(r)

    def sources() -> tuple[Source, ...]:
        return (Source(r),) if calls["n"] >= 2 else ()

    threading.Timer(0.2, lambda: os.write(w, b"x")).start()
    t0 = time.monotonic()
    out = run_dag(["a"], {}, lambda name: Watched(probe, sources), 2)
    assert out.done == ["a"]
    assert time.monotonic() - t0 < 1.0
    assert calls["n"] == 3  # polled twice (20 ms apart), then woken once by the write


def test_sequential_mode_still_waits_for_each_probe(pipes: Callable[[], tuple[int, int]]) -> None:
    """max_parallel=1: b begins only once a's watched probe said ready."""
    r, w = pipes()
    began: list[str] = []

    def action(name: str) -> Watched | None:
        began.append(name)
        if name == "a":
            threading.Timer(0.1, lambda: os.write(w, b"x")).start()
            return Watched(lambda: _readable(r), lambda: (Source(r),))
        return None

    out = run_dag(["a", "b"], {}, action, 1)
    assert out.done == ["a", "b"] and began == ["a", "b"]


def test_a_probe_is_not_asked_before_its_not_before_time() -> None:
    """A start grace: asking before it ends cannot succeed. With the hint the probe is
    asked when it begins and once the time has come, not every POLL_INTERVAL."""
    calls: list[float] = []
    began = time.monotonic()
    ready_at = began + 0.3

    def check() -> bool:
        calls.append(time.monotonic())
        return time.monotonic() >= ready_at

    probe = Watched(check, tuple, not_before=lambda: ready_at)
    t0 = time.monotonic()
    out = run_dag(["a"], {}, lambda _name: probe, 4)
    assert out.done == ["a"]
    assert time.monotonic() - t0 < 0.3 + 1.0
    assert len(calls) == 2, f"asked {len(calls)} times"


def test_a_grace_probe_says_when_it_can_succeed() -> None:
    """readiness.grace_probe gives the scheduler its end, and still checks the process."""
    from procmgmt.readiness import grace_probe

    now = [100.0]
    probe = grace_probe("x", 0.2, lambda: None, clock=lambda: now[0])
    assert scheduler.not_before(probe) == pytest.approx(100.2)
    assert not probe()
    now[0] = 100.25
    assert probe()


def test_a_signal_wakes_the_loop_at_once(slow_timers: None) -> None:
    """A signal whose handler cancels the run is seen at once, not at the next due
    probe (2 s here) nor when the probe's start grace ends (60 s)."""
    cancelled = threading.Event()
    import signal

    previous = signal.signal(signal.SIGUSR1, lambda *_: cancelled.set())
    far = time.monotonic() + 60
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        t0 = time.monotonic()
        out = run_dag(["a"], {}, lambda _n: Watched(lambda: False, tuple,
                                                    not_before=lambda: far),
                      2, cancel=cancelled.is_set, drain=False)
        took = time.monotonic() - t0
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert out.cancelled == ["a"] and not out.failed
    assert took < 1.5, took
    assert signal.set_wakeup_fd(-1) == -1, "the loop left its wake-up descriptor set"


def test_a_probe_that_fails_after_the_cancel_counts_as_cancelled() -> None:
    """A probe slow to answer (a manager that takes its time) that comes back with a
    failure after the run was cancelled: the wait was abandoned, not failed."""
    cancelled = threading.Event()

    def probe() -> bool:
        cancelled.set()  # the interrupt arrives while the probe runs
        raise TimeoutError("not ready after 60 s")

    out = run_dag(["a", "b"], {}, lambda n: probe if n == "a" else None, 2,
                  cancel=cancelled.is_set, drain=False)
    assert out.cancelled == ["a"] and not out.failed, out
    # With drain=True (stops finish even when cancelled) a failure stays a failure.
    cancelled.clear()
    out = run_dag(["a"], {}, lambda _n: probe, 2, cancel=cancelled.is_set, drain=True)
    assert list(out.failed) == ["a"] and not out.cancelled


def test_an_action_that_fails_after_the_cancel_counts_as_cancelled() -> None:
    """The same for an action still running when the run was cancelled."""
    cancelled = threading.Event()

    def action(_name: str) -> None:
        cancelled.set()
        raise TimeoutError("start script timed out")

    out = run_dag(["a"], {}, action, 2, cancel=cancelled.is_set, drain=False)
    assert out.cancelled == ["a"] and not out.failed, out


def test_the_wakeup_descriptor_is_not_left_on_the_closed_pipe() -> None:
    """A wake-up descriptor set before the run that is closed meanwhile cannot be put
    back: none is left set then, never the run's own pipe, closed with it."""
    import signal

    r, w = os.pipe()
    os.set_blocking(w, False)
    previous = signal.set_wakeup_fd(w)
    try:
        def action(_name: str) -> None:
            os.close(w)  # someone closes it while the run goes on

        run_dag(["a"], {}, action, 1)
        assert signal.set_wakeup_fd(-1) == -1
    finally:
        signal.set_wakeup_fd(previous)
        os.close(r)


def test_inline_actions_run_here_without_a_worker(slow_timers: None) -> None:
    """Inline actions run on the caller's thread as soon as their dependencies finished
    (in dependency order whatever the preferred order), while every worker is held by
    a blocking action; their probes are asked at once, not on the timer."""
    me = threading.get_ident()
    release = threading.Event()
    threads: dict[str, int] = {}
    began: list[str] = []

    def action(name: str) -> Callable[[], bool] | None:
        threads[name] = threading.get_ident()
        began.append(name)
        if name.startswith("slow"):
            release.wait(10)
            return None
        if name == "c":
            release.set()  # the last inline one: the blocking ones may end now
            return lambda: True
        return None

    t0 = time.monotonic()
    out = run_dag(["slow1", "slow2", "c", "b", "a"], {"b": {"a"}, "c": {"b"}}, action, 2,
                  inline=lambda name: not name.startswith("slow"))
    assert time.monotonic() - t0 < 1.5, "an inline probe waited for the timer"
    assert sorted(out.done) == ["a", "b", "c", "slow1", "slow2"] and not out.failed
    assert [n for n in began if not n.startswith("slow")] == ["a", "b", "c"]
    assert all(threads[n] == me for n in "abc")
    assert threads["slow1"] != me and threads["slow2"] != me


def test_an_inline_failure_stops_what_has_not_begun() -> None:
    began: list[str] = []

    def action(name: str) -> Callable[[], bool] | None:
        began.append(name)
        if name == "a":
            raise OSError("a failed")
        return None

    out = run_dag(["a", "b", "c"], {"c": {"b"}}, action, 4, inline=lambda name: True)
    assert began == ["a"] and list(out.failed) == ["a"]
    assert "b" not in out.done and "c" not in out.done


def test_a_cancel_stops_inline_actions_at_once() -> None:
    began: list[str] = []
    cancelled = threading.Event()

    def action(name: str) -> Callable[[], bool] | None:
        began.append(name)
        cancelled.set()
        return None

    out = run_dag(["a", "b", "c"], {}, action, 4, cancel=cancelled.is_set,
                  inline=lambda name: True)
    assert began == ["a"] and out.done == ["a"]
    assert sorted(out.cancelled) == ["b", "c"]


def test_sequential_mode_runs_nothing_inline() -> None:
    """``max_parallel=1`` keeps its strict order: an inline action waits its turn."""
    order: list[str] = []
    polls = {"a": 0}

    def action(name: str) -> Callable[[], bool] | None:
        order.append(name)
        if name == "a":
            def probe() -> bool:
                polls["a"] += 1
                return polls["a"] >= 3
            return probe
        return None

    out = run_dag(["a", "b"], {}, action, 1, inline=lambda name: True)
    assert order == ["a", "b"] and out.done == ["a", "b"] and polls["a"] == 3
