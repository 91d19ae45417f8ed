"""The switch engine: move the system from the current generation to another.

A switch (nix-processmgmt's order, hardened):

1. take the profile lock (a concurrent switch waits; it never interleaves);
2. finish a switch that crashed before (a journal records what was in flight);
3. ``init-state``; the activator prepares (starts its manager, installs files);
4. stop the obsolete processes, dependents before their dependencies;
5. start the new ones (and any kept one found dead), each as soon as its
   own dependencies are *ready*, in parallel up to ``max_parallel``;
6. only then record the new generation and drop the journal.

If a start fails or a process does not become ready, what was started is
stopped and what was stopped is started again, so the previous generation
runs as before (unless ``rollback_on_failure`` is off, for debugging); the
error names the process, the check and the last error. State directories
are never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from procmgmt import fsutil, service_files
from procmgmt import readiness as rd
from procmgmt.backends import get_backend
from procmgmt.backends.base import Activator, DeployedProcess, Generation
from procmgmt.deploy import accounts, handstop, preflight
from procmgmt.deploy.build import load_generation
from procmgmt.deploy.doctor import store_commands
from procmgmt.deploy.plan import Plan, compute_plan
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.progress import Progress
from procmgmt.deploy.scheduler import Outcome, reverse_waits, run_dag
from procmgmt.deploy.state import init_state
from procmgmt.errors import DeployError, LockedError
from procmgmt.pids import expected_uid
from procmgmt.settings import Settings
from procmgmt.validate import deployment_id

DEFAULT_MAX_PARALLEL = min(32, 4 * (os.cpu_count() or 1))

#: Crash-test hook: ``PROCMGMT_CRASH_AT=<point>`` makes procmgmt kill itself with
#: SIGKILL at that point of a switch, so tests can prove every point recoverable.
#: Points: locked, journaled, prepared, stopping, stopped, starting, started,
#: activated, registered, done.
CRASH_ENV = "PROCMGMT_CRASH_AT"

#: Longest wait, when recovering, for scripts a crashed switch left running.
SETTLE_TIMEOUT = 60.0


def checkpoint(point: str) -> None:
    """Die here (SIGKILL, no cleanup at all) when the crash-test hook asks for it."""
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), 9)


@contextmanager
def profile_lock(settings: Settings, *, wait: bool = True,
                 out: TextIO | None = None) -> Iterator[None]:
    """Exclusive lock of one profile (a file lock, released by the kernel on crash)."""
    fsutil.ensure_dir(settings.profiles_dir)
    path = os.path.join(settings.profiles_dir, f"{settings.profile}.lock")
    # 0600: a lock others can open, they can hold (and so stop every switch).
    fd = fsutil.open_file(path, fsutil.PRIVATE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            if not wait:
                raise LockedError(f"profile {settings.profile!r} is being switched by another "
                                  f"procmgmt (pid {holder}); try again when it has finished"
                                  ) from None
            if out is not None:
                print(f"waiting for another procmgmt (pid {holder}) to finish with profile "
                      f"{settings.profile!r}...", file=out, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


@dataclass
class SwitchResult:
    """What a switch did."""

    plan: Plan
    generation: int | None = None
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Options:
    """How the engine activates."""

    max_parallel: int = DEFAULT_MAX_PARALLEL
    rollback_on_failure: bool = True
    #: Wait for a profile lock held by another switch (False: fail at once).
    wait_for_lock: bool = True
    #: Without a readiness check, a process counts as ready once it is still
    #: alive this many seconds after it started.
    start_grace: float = 0.2
    #: Probe declared readiness checks (off only where nothing really runs: command
    #: plans recorded against a fake manager).
    readiness_checks: bool = True


class _Timeline:
    """Start/ready timestamps of the last switch, for ``analyze critical-chain``."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.events: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def mark(self, name: str, event: str, **extra: Any) -> None:
        with self.lock:
            rec = self.events.setdefault(name, {})
            rec[event] = round(time.monotonic() - self.t0, 4)
            rec.update(extra)

    def to_json(self) -> dict[str, Any]:
        return {"started_at": self.wall0, "processes": self.events}


class Engine:
    """Deploys generations of one profile."""

    def __init__(self, settings: Settings, out: TextIO | None = None,
                 options: Options | None = None) -> None:
        self.settings = settings
        self.profile = Profile(settings)
        self.out = out if out is not None else sys.stdout
        self.options = options or Options()
        self._activators: dict[str, Activator] = {}
        self._act_locks: dict[int, threading.Lock] = {}
        self._progress: Progress | None = None

    # --- small helpers -------------------------------------------------------------

    def say(self, line: str) -> None:
        """Progress output (one line per event; safe from worker threads)."""
        self.progress.line(line)

    @property
    def progress(self) -> Progress:
        """Event lines plus, on a terminal, a live status line."""
        if self._progress is None or self._progress.out is not self.out:
            self._progress = Progress(self.out)
        return self._progress

    def activator(self, backend: str) -> Activator:
        """The (cached) activator of ``backend``."""
        if backend not in self._activators:
            act = get_backend(backend).activator(self.settings)
            self._activators[backend] = act
            self._act_locks[id(act)] = threading.Lock()
        return self._activators[backend]

    def use_activator(self, backend: str, act: Activator) -> None:
        """Drive ``backend`` through ``act`` (tests, embedding with a custom runner)."""
        self._activators[backend] = act
        self._act_locks[id(act)] = threading.Lock()

    @contextmanager
    def _serial(self, act: Activator) -> Iterator[None]:
        """Serialize calls into activators that are not safe to call from threads."""
        if getattr(act, "parallel_safe", False):
            yield
        else:
            with self._act_locks[id(act)]:
                yield

    @property
    def journal_path(self) -> str:
        """The journal of an in-flight switch."""
        return os.path.join(self.settings.profiles_dir, f"{self.settings.profile}.journal")

    @property
    def timeline_path(self) -> str:
        """Timestamps of the last switch."""
        return os.path.join(self.settings.profiles_dir, f"{self.settings.profile}.last-switch.json")

    def current(self) -> Generation | None:
        """The deployed generation, None if nothing is deployed."""
        path = self.profile.current_path()
        return load_generation(path) if path else None

    def plan(self, new: Generation) -> Plan:
        """What switching to ``new`` would do."""
        return compute_plan(self.current(), new)

    # --- switch --------------------------------------------------------------------

    def switch(self, new: Generation, register: Callable[[], int | None],
               *, dry_run: bool = False) -> SwitchResult:
        """Activate ``new``; ``register`` records the generation once everything is ready."""
        with profile_lock(self.settings, out=self.out, wait=self.options.wait_for_lock):
            if dry_run:
                return SwitchResult(compute_plan(self.current(), new))
            checkpoint("locked")
            self._recover()
            old = self.current()
            plan = compute_plan(old, new)
            preflight.check(self, old, new, plan)  # before the journal and the first stop
            t0 = time.monotonic()
            accounts.check_ids(new, self.settings)  # an id taken: fail before any change
            self._write_journal(old, new)
            checkpoint("journaled")
            try:
                result = self._activate(old, new, plan)
            finally:
                self.progress.close()
            checkpoint("activated")
            result.generation = register()
            checkpoint("registered")
            self._clear_journal()
            checkpoint("done")
            result.seconds = time.monotonic() - t0
            return result

    def repair(self) -> bool:
        """Converge after a crashed switch; True when there was something to repair."""
        with profile_lock(self.settings, out=self.out, wait=self.options.wait_for_lock):
            return self._recover()

    def _write_journal(self, old: Generation | None, new: Generation) -> None:
        data = {"pid": os.getpid(), "old": old.path if old else None, "new": new.path,
                "time": time.time()}
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.stops_path)
        fsutil.write_atomic(self.journal_path, json.dumps(data), fsutil.PRIVATE, fsync=True)

    def _clear_journal(self) -> None:
        for path in (self.journal_path, self.stops_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    @property
    def stops_path(self) -> str:
        """Names of the processes an in-flight switch has begun to stop, one a line."""
        return self.journal_path + ".stops"

    def _note_stop(self, name: str) -> None:
        """Record, before signalling it, that a switch stops ``name``: a process that
        takes its time to exit may still be running when a crashed switch is repaired,
        and would die right after repair found it 'running'. Only while a journal
        exists (a switch or its undo); a killed process loses no written line."""
        if os.path.exists(self.journal_path):
            fd = fsutil.open_file(self.stops_path, fsutil.PRIVATE, os.O_WRONLY | os.O_APPEND)
            with open(fd, "a", closefd=True) as f:
                f.write(name + "\n")

    def _recover(self) -> bool:
        """A journal left behind means a switch died half-way: return to the recorded
        current generation (stop what only the interrupted one had, start what is missing)."""
        try:
            with open(self.journal_path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            data = {}
        self.say("a previous switch was interrupted: restoring the current generation")
        self._settle()
        current = self.current()
        target = current or Generation(self._journal_backend(data), "", ())
        interrupted = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            if data.get("new"):
                interrupted = load_generation(data["new"])
        if interrupted is not None:
            keep = {p.hash for p in target.processes}
            act_i = self.activator(interrupted.backend)
            act_i.prepare(interrupted, target if target.backend == interrupted.backend else None)
            for p in reversed(interrupted.processes):
                if p.hash not in keep and act_i.status(interrupted, p).running:
                    self.say(f"stopping {p.name} (of the interrupted switch)")
                    act_i.stop_and_wait(interrupted, p)
        if target.processes:
            act = self.activator(target.backend)
            for p in target.processes:
                service_files.prepare(self.settings, p)
            act.prepare(target, None)
            if current is not None and current.path == data.get("old"):
                # Not recorded yet: what it began to stop is the target's. Finish those
                # stops (the signal may already be sent), so they start again below.
                noted = self._noted_stops()
                for p in reversed(target.processes):
                    if p.name in noted and act.status(target, p).running:
                        self.say(f"stopping {p.name} (its stop was interrupted)")
                        act.stop_and_wait(target, p)
            dead = [p for p in target.processes if not act.status(target, p).running]
            self._start_all(act, target, dead, _Timeline())
            act.finish(target, None)
        elif interrupted is not None:
            self.activator(interrupted.backend).finish(
                Generation(interrupted.backend, "", ()), interrupted)
        self._clear_journal()
        return True

    def _noted_stops(self) -> set[str]:
        try:
            with open(self.stops_path) as f:
                return {line.strip() for line in f if line.strip()}
        except OSError:
            return set()

    def _settle(self) -> None:
        """Wait for the start and stop scripts the dead switch left running.

        They go on without it: a start finishing after we looked would leave a
        process nothing records, a stop finishing after we looked would kill one
        we found running. Each script ends by itself (its own timeouts); past
        ``SETTLE_TIMEOUT`` we go on anyway rather than hang.
        """
        deadline = time.monotonic() + SETTLE_TIMEOUT
        pids = store_commands(self.settings)
        if pids:
            self.say(f"waiting for {len(pids)} start/stop script(s) of the interrupted "
                     "switch to finish")
        while pids and time.monotonic() < deadline:
            time.sleep(0.05)
            pids = store_commands(self.settings)
        if pids:
            self.say(f"  still running after {SETTLE_TIMEOUT:g} s, going on: pids "
                     + " ".join(map(str, pids)))

    @staticmethod
    def _journal_backend(data: dict[str, Any]) -> str:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return load_generation(data["new"]).backend
        return "sysvinit"

    # --- activation ----------------------------------------------------------------

    def _activate(self, old: Generation | None, new: Generation, plan: Plan) -> SwitchResult:
        init_state(self.settings)
        # Users and groups that are new come first: processes may run as them.
        accounts.create_new(old, new, self.settings, self.say)
        act_new = self.activator(new.backend)
        same = old is not None and old.backend == new.backend
        act_old = self.activator(old.backend) if old is not None else act_new
        # Pid directories and logs first: a supervisor may open the logs as soon
        # as prepare hands it the new configuration.
        for p in plan.start:
            service_files.prepare(self.settings, p)
        act_new.prepare(new, old if same else None)
        checkpoint("prepared")
        held = handstop.kept_by_switch(self.settings, plan.keep)  # 'procmgmt stop'ped
        revive = [p for p in plan.keep
                  if p.name not in held and not act_new.status(new, p).running]
        if revive:
            self.say("found not running, starting again: " + ", ".join(p.name for p in revive))
        start_names = {p.name for p in plan.start} | {p.name for p in revive}
        to_start = [p for p in new.processes if p.name in start_names]
        timeline = _Timeline()
        result = SwitchResult(plan)

        stopped: list[DeployedProcess] = []
        if old is not None and plan.stop:
            out = self._stop_all(act_old, old, plan.stop)
            stopped = [p for p in plan.stop if p.name in set(out.done)]
            if not out.ok:
                self._fail(out, old, new, act_old, act_new, stopped, [], same)
        out = self._start_all(act_new, new, to_start, timeline)
        started = [p for p in to_start if p.name in set(out.done) | set(out.failed)]
        self._save_timeline(timeline)
        if not out.ok:
            self._fail(out, old, new, act_old, act_new, stopped, started, same)
        act_new.finish(new, old if same else None)
        if old is not None and not same:
            act_old.finish(Generation(old.backend, "", ()), old)
        # ... and those no longer needed go last, once nothing runs as them.
        accounts.delete_obsolete(old, new, self.settings, self.say)
        result.started = [p.name for p in to_start if p.name in set(out.done)]
        result.stopped = [p.name for p in stopped]
        return result

    def _fail(self, out: Outcome, old: Generation | None, new: Generation, act_old: Activator,
              act_new: Activator, stopped: list[DeployedProcess],
              started: list[DeployedProcess], same: bool) -> None:
        reasons = [f"{name}: {exc}" for name, exc in out.failed.items()]
        if self.options.rollback_on_failure:
            self._undo(old, new, act_old, act_new, stopped, started, same)
            accounts.undo_created(old, self.settings, self.say)
            self._clear_journal()
            tail = "the previous generation was restored"
        else:
            tail = "left as it is (--no-rollback); run 'procmgmt repair' to restore"
        raise DeployError("switch failed: " + "; ".join(reasons) + f"; {tail}")

    def _stop_all(self, act: Activator, gen: Generation, procs: list[DeployedProcess]) -> Outcome:
        by_name = {p.name: p for p in procs}
        deps = {p.name: list(p.dependencies) for p in gen.processes}
        waits = reverse_waits(deps)

        def stop(name: str) -> Callable[[], bool] | None:
            self.say(f"stopping {name}")
            self.progress.count("stopping")
            self._note_stop(name)
            checkpoint("stopping")
            with self._serial(act):
                probe = act.stop(gen, by_name[name])
            if probe is None:
                checkpoint("stopped")
                self.progress.count("stopping", -1)
                self.progress.count("stopped")
                return None

            def stopped() -> bool:
                with self._serial(act):
                    done = probe()
                if done:
                    checkpoint("stopped")
                    self.progress.count("stopping", -1)
                    self.progress.count("stopped")
                return done

            return stopped

        return run_dag([p.name for p in procs], waits, stop, self.options.max_parallel)

    def _start_all(self, act: Activator, gen: Generation, procs: list[DeployedProcess],
                   timeline: _Timeline) -> Outcome:
        by_name = {p.name: p for p in procs}
        waits = {p.name: set(p.dependencies) for p in procs}

        def start(name: str) -> Callable[[], bool]:
            p = by_name[name]
            # A backend whose start returns only once ready (systemd Type=notify:
            # READY=1 goes to systemd, not to our socket) says so in the manifest.
            check = (rd.from_json(p.readiness)
                     if p.readiness and not p.extra.get("readiness_native")
                     and self.options.readiness_checks else None)
            ctx = rd.ProbeContext(name=name, pid_file=p.pid_file,
                                  roots=lambda: self._started_pids(act, gen, p),
                                  pid_uid=expected_uid(p.user),
                                  marker=deployment_id(self.settings))
            if isinstance(check, rd.LogLine):
                with contextlib.suppress(OSError):
                    ctx.log_offsets[check.path] = os.path.getsize(check.path)
            if isinstance(check, rd.Notify):
                ctx.notify = rd.NotifySocket(
                    rd.notify_socket_path(self.settings.runtime_dir, name))
            self.say(f"starting {name}")
            self.progress.count("starting")
            timeline.mark(name, "start", dependencies=list(p.dependencies))
            checkpoint("starting")

            def failed() -> None:
                timeline.mark(name, "failed")
                self.progress.count("starting", -1)
                self.progress.count("failed")
                if ctx.notify is not None:
                    ctx.notify.close()

            try:
                service_files.prepare(self.settings, p)
                with self._serial(act):
                    started = act.start(gen, p)
            except Exception:
                failed()
                raise

            def begin() -> Callable[[], bool]:
                """Once started: the readiness check or the start grace, from now on."""
                checkpoint("started")
                timeline.mark(name, "started")
                alive = self._alive_probe(act, gen, p)
                return (rd.make_probe(check, ctx, alive=alive) if check is not None
                        else rd.grace_probe(name, self.options.start_grace, alive))

            # start() may return a "started" probe (the manager starts it on its own):
            # poll that first; the readiness probe begins when it reports started.
            phase: list[Callable[[], bool] | None] = [None if started is not None else begin()]

            def probe() -> bool:
                if phase[0] is None:
                    assert started is not None
                    try:
                        with self._serial(act):
                            if not started():
                                return False
                    except Exception:
                        failed()
                        raise
                    phase[0] = begin()
                inner = phase[0]
                assert inner is not None
                try:
                    ready = inner()
                except Exception:
                    failed()
                    raise
                if ready:
                    self.progress.count("starting", -1)
                    self.progress.count("ready")
                    timeline.mark(name, "ready", check=check.describe() if check else "started")
                    if check is not None:
                        took = timeline.events[name]["ready"] - timeline.events[name]["start"]
                        self.say(f"ready    {name} ({check.describe()}, {took:.2f} s)")
                    if ctx.notify is not None:
                        ctx.notify.close()
                return ready

            return probe

        return run_dag([p.name for p in procs], waits, start, self.options.max_parallel)

    def start_processes(self, act: Activator, gen: Generation,
                        procs: list[DeployedProcess]) -> Outcome:
        """Start ``procs`` readiness-gated and in parallel (``run-activity start``)."""
        timeline = _Timeline()
        out = self._start_all(act, gen, procs, timeline)
        self._save_timeline(timeline)
        return out

    def stop_processes(self, act: Activator, gen: Generation,
                       procs: list[DeployedProcess]) -> Outcome:
        """Stop ``procs``, dependents first, in parallel (``run-activity -r stop``)."""
        return self._stop_all(act, gen, procs)

    def _alive_probe(self, act: Activator, gen: Generation,
                     p: DeployedProcess) -> Callable[[], str | None]:
        """A 'did it die?' check for readiness waits (at most every 0.25 s)."""
        last = [0.0]

        def alive() -> str | None:
            now = time.monotonic()
            if now - last[0] < 0.25:
                return None
            last[0] = now
            with self._serial(act):
                st = act.status(gen, p)
                if st.running:
                    return None
                why = act.diagnose(gen, p)
            return (f"the process is not running {st.detail}".strip()
                    + (f"; {why}" if why else ""))

        return alive

    def _started_pids(self, act: Activator, gen: Generation, p: DeployedProcess) -> list[int]:
        """Whose listener a readiness check accepts: the pids started for ``p``."""
        with self._serial(act):
            return act.started_pids(gen, p)

    def _save_timeline(self, timeline: _Timeline) -> None:
        with contextlib.suppress(OSError):
            fsutil.write_atomic(self.timeline_path,
                                json.dumps(timeline.to_json(), indent=1, sort_keys=True),
                                fsutil.PRIVATE)

    def _undo(self, old: Generation | None, new: Generation, act_old: Activator,
              act_new: Activator, stopped: list[DeployedProcess],
              started: list[DeployedProcess], same: bool) -> None:
        """Put the previous generation back after a failed start."""
        self.say("switch failed: restoring the previous generation")
        if started:
            out = self._stop_all(act_new, new, started)
            for name, error in out.failed.items():
                self.say(f"  could not stop {name}: {error}")
        if old is None:
            act_new.finish(Generation(new.backend, "", ()), None)
            return
        try:
            act_old.prepare(old, new if same else None)
        except Exception as exc:
            self.say(f"  could not prepare the previous generation: {exc}")
        order = {p.name: i for i, p in enumerate(old.processes)}
        again = sorted(stopped, key=lambda p: order.get(p.name, 0))
        out = self._start_all(act_old, old, again, _Timeline())
        for name, error in out.failed.items():
            self.say(f"  could not restart {name}: {error}")
        if not same:
            act_new.finish(Generation(new.backend, "", ()), None)
