"""The switch engine: move the system from the current generation to another.

A switch (nix-processmgmt's order, hardened):

1. take the profile lock (a concurrent switch waits; it never interleaves);
2. finish a switch that crashed before (a journal records what was in flight);
3. ``init-state``, new accounts; nothing has changed yet, so a failure up to
   here leaves no journal;
4. write the journal, then the activator prepares (starts its manager,
   installs files, makes the manager reread them: already a change);
5. stop the obsolete processes, dependents before their dependencies;
6. start the new ones (and any kept one found dead), each as soon as its
   own dependencies are *ready*, in parallel up to ``max_parallel``;
7. only then record the new generation and drop the journal.

Any failure after the journal was written (a process that does not start or
become ready, a manager refusing its files, a full disk, a first SIGINT or
SIGTERM) restores the previous generation the way ``repair`` does, with that
generation's own backend and files, so the previous generation runs as
before (unless ``rollback_on_failure`` is off, for debugging); the error
names the process, the check and the last error. When restoring is
impossible the journal stays and the error lists what is left. State
directories are never touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NoReturn, TextIO

from procmgmt import fsutil, service_files
from procmgmt import readiness as rd
from procmgmt.backends import get_backend
from procmgmt.backends.base import Activator
from procmgmt.deploy import accounts, handstop, preflight
from procmgmt.deploy.applied import Applied
from procmgmt.deploy.doctor import store_commands
from procmgmt.deploy.options import Options
from procmgmt.deploy.plan import Plan, compute_plan
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.progress import Progress, Silent
from procmgmt.deploy.scheduler import (
    Outcome,
    Watched,
    not_before,
    reverse_waits,
    run_dag,
    watched_sources,
)
from procmgmt.deploy.state import init_state
from procmgmt.errors import (
    DeployError,
    InterruptError,
    LockedError,
    ProcmgmtError,
    StorageError,
    storage,
    storage_error,
)
from procmgmt.filewatch import FileWatch
from procmgmt.listeners import RecentListenTable
from procmgmt.manifest import DeployedProcess, Generation, load_generation
from procmgmt.pids import expected_uid
from procmgmt.settings import Settings
from procmgmt.testhooks import CRASH_ENV, checkpoint, fail_point
from procmgmt.validate import deployment_id

#: Longest wait, when recovering, for scripts a crashed switch left running.
SETTLE_TIMEOUT = 60.0

__all__ = ["CRASH_ENV", "Engine", "SwitchResult", "checkpoint", "profile_lock"]


class _RunFailedError(Exception):
    """Starting or stopping some processes failed (or was cancelled): the undo's cue."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("; ".join(f"{n}: {e}" for n, e in outcome.failed.items()))
        self.outcome = outcome


class _SwitchInterruptedError(Exception):
    """A first SIGINT/SIGTERM, noticed between two steps of a switch."""


def _describe(exc: BaseException) -> str:
    """One line for an error in a message: procmgmt's own errors as they are, a
    failed file operation with its path and reason, anything else by its type."""
    if isinstance(exc, ProcmgmtError):
        return str(exc)
    if isinstance(exc, OSError):
        return str(storage_error(exc))
    return f"{type(exc).__name__}: {exc}"


def _named(name: str, text: str) -> str:
    """``NAME: text``, unless the text already begins with the name."""
    return text if text.startswith(f"{name}: ") else f"{name}: {text}"


@contextmanager
def profile_lock(settings: Settings, *, wait: bool = True,
                 out: TextIO | None = None) -> Iterator[None]:
    """Exclusive lock of one profile (a file lock, released by the kernel on crash)."""
    path = os.path.join(settings.profiles_dir, f"{settings.profile}.lock")
    with storage("open the profile lock", path):
        fsutil.ensure_dir(settings.profiles_dir)
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
                out.write(f"waiting for another procmgmt (pid {holder}) to finish with "
                          f"profile {settings.profile!r}...\n")
                out.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # the holder's pid is only for messages
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
    """Deploys generations of one profile.

    Settings, options and the output stream are fixed at construction: the
    activators, the profile and the locks are derived from them, so changing one
    afterwards would leave those behind (build another engine instead)."""

    def __init__(self, settings: Settings, out: TextIO | None = None,
                 options: Options | None = None) -> None:
        self._settings = settings
        self.profile = Profile(settings)
        self._out = out if out is not None else Silent()
        self._options = options or Options()
        self._activators: dict[str, Activator] = {}
        self._act_locks: dict[int, threading.Lock] = {}
        self._progress: Progress | None = None
        #: A journal of this switch (or of one being recovered) exists on disk.
        self._journaled = False
        #: SIGINT/SIGTERM received during the current switch.
        self._interrupts = 0
        #: A switch is bringing up its new generation (not undoing, not recovering):
        #: its starts are noted in the journal.
        self._forward = False

    @property
    def settings(self) -> Settings:
        """The settings every activator and path of this engine was made from."""
        return self._settings

    @property
    def options(self) -> Options:
        """How this engine activates."""
        return self._options

    @property
    def out(self) -> TextIO:
        """Where progress lines go: the caller's choice; none are kept without one."""
        return self._out

    # --- small helpers -------------------------------------------------------------

    def say(self, line: str) -> None:
        """Progress output (one line per event; safe from worker threads)."""
        self.progress.line(line)

    @property
    def progress(self) -> Progress:
        """Event lines plus, on a terminal, a live status line."""
        if self._progress is None:
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
        """Activate ``new``; ``register`` records the generation once everything is ready.

        Any failure (an exception anywhere, not only a process that does not
        start) and a first SIGINT/SIGTERM undo what was done; a second signal
        stops at once and leaves the journal for ``repair``."""
        with self._signals():
            try:
                return self._switch(new, register, dry_run)
            except KeyboardInterrupt:
                if self._journaled:
                    raise InterruptError(
                        "interrupted again: stopped at once, the switch is left half-done; "
                        "run 'procmgmt repair' to restore the current generation") from None
                raise InterruptError("interrupted before anything was changed") from None

    def _switch(self, new: Generation, register: Callable[[], int | None],
                dry_run: bool) -> SwitchResult:
        with profile_lock(self.settings, out=self.out, wait=self.options.wait_for_lock):
            if dry_run:
                return SwitchResult(compute_plan(self.current(), new))
            checkpoint("locked")
            self._recover()
            if self._interrupts:
                raise InterruptError("interrupted: the interrupted switch before this one was "
                                     "repaired; this switch was not begun")
            old = self.current()
            plan = compute_plan(old, new)
            # Before the journal and the first stop.
            preflight.check(self.settings, self.activator, old, new, plan)
            t0 = time.monotonic()
            accounts.check_ids(new, self.settings)  # an id taken: fail before any change
            try:
                try:
                    result = self._activate(old, new, plan)
                    checkpoint("activated")
                    self._check_interrupt()
                    fail_point("register")
                    with storage("record the new generation", self.settings.profiles_dir):
                        result.generation = register()
                finally:
                    self.progress.close()
            except KeyboardInterrupt:
                if not self._journaled:  # interrupted before the journal: as a failure there
                    accounts.undo_created(old, self.settings, self.say)
                raise
            except BaseException as exc:
                self._fail(old, new, exc)
            self._forward = False
            checkpoint("registered")
            # Accounts no longer needed go last, once nothing runs as them and the
            # new generation is recorded (an undo must still find the old ones).
            try:
                accounts.delete_obsolete(old, new, self.settings, self.say)
            except (ProcmgmtError, OSError) as exc:
                self.say(f"warning: could not remove obsolete accounts ({exc}); the next "
                         "successful switch tries again")
            self._clear_journal()
            checkpoint("done")
            result.seconds = time.monotonic() - t0
            return result

    def repair(self) -> bool:
        """Converge after a crashed or failed switch; True when there was something to
        repair. DeployError (the journal kept) when the recorded current generation
        cannot be restored: the message says what is left and offers ``--abandon``."""
        with profile_lock(self.settings, out=self.out, wait=self.options.wait_for_lock):
            return self._recover(strict=True)

    def abandon(self) -> list[str] | None:
        """``repair --abandon``: drop the journal without restoring anything; what runs
        keeps running. Returns what the interrupted switch may have left running
        (None when there was no journal); ``doctor`` lists such processes as strays."""
        with profile_lock(self.settings, out=self.out, wait=self.options.wait_for_lock):
            data = self._read_journal()
            if data is None:
                return None
            interrupted = self._journal_generation(data)
            current = self.current()
            keep = ({p.hash for p in current.processes}
                    if current is not None and interrupted is not None
                    and current.backend == interrupted.backend else set())
            left = []
            if interrupted is not None and interrupted.path != (current.path if current else None):
                act = self.activator(interrupted.backend)
                for p in interrupted.processes:
                    if p.hash in keep:
                        continue
                    try:
                        st = act.status(interrupted, p)
                    except Exception as exc:
                        left.append(f"{p.name} ({interrupted.backend}) may still run: "
                                    f"cannot tell ({_describe(exc)})")
                        continue
                    if st.running:
                        left.append(f"{p.name} ({interrupted.backend}) still runs"
                                    + (f" (pid {st.pid})" if st.pid else ""))
            self._clear_journal()
            return left

    def _read_journal(self) -> dict[str, Any] | None:
        """The journal's content, {} when it is unreadable, None when there is none."""
        try:
            with open(self.journal_path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _journal_generation(data: dict[str, Any]) -> Generation | None:
        """The generation the journalled switch was activating, if it can still be read."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if data.get("new"):
                return load_generation(data["new"])
        return None

    def _write_journal(self, old: Generation | None, new: Generation) -> None:
        data = {"pid": os.getpid(), "old": old.path if old else None, "new": new.path,
                "time": time.time()}
        with storage("write the switch journal", self.journal_path):
            for notes in (self.stops_path, self.starts_path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(notes)
            fsutil.write_atomic(self.journal_path, json.dumps(data), fsutil.PRIVATE,
                                fsync=True)
        self._journaled = True

    def _clear_journal(self) -> None:
        for path in (self.journal_path, self.stops_path, self.starts_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self._journaled = False

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
            self._append_note(self.stops_path, name)

    @property
    def starts_path(self) -> str:
        """What of the new generation an in-flight switch may have started: the line
        ``prepared`` once its backend was set up (a manager may spawn programs then),
        ``start NAME`` before each start."""
        return self.journal_path + ".starts"

    def _note_start(self, line: str) -> None:
        """Append ``line`` to the start notes (only while a journal exists)."""
        if self._forward and os.path.exists(self.journal_path):
            self._append_note(self.starts_path, line)

    def _append_note(self, path: str, line: str) -> None:
        """Append one line to a journal note. A switch going forward fails when it
        cannot (a full disk: better undone than unrecoverable after a crash); an
        undo or a repair goes on without the note rather than stay half-way."""
        try:
            with storage("write the switch journal", path):
                fd = fsutil.open_file(path, fsutil.PRIVATE, os.O_WRONLY | os.O_APPEND)
                with open(fd, "a", closefd=True) as f:
                    f.write(line + "\n")
        except StorageError:
            if self._forward:
                raise

    def _start_notes(self) -> set[str] | None:
        """The start notes: ``prepared`` and ``start NAME`` lines; None when they cannot
        be read (then anything may have started)."""
        try:
            with open(self.starts_path) as f:
                return {line.rstrip("\n") for line in f if line.strip()}
        except FileNotFoundError:
            return set()
        except OSError:
            return None

    def _recover(self, *, strict: bool = False) -> bool:
        """A journal left behind means a switch died (or failed and could not undo)
        half-way: return to the recorded current generation. Processes of the
        current generation that do not start fail ``repair`` (``strict``) but not
        a switch, which goes on (it may be the fix); anything of the interrupted
        generation that may still run keeps the journal and fails both."""
        data = self._read_journal()
        if data is None:
            return False
        self._journaled = True
        self.say("a previous switch was interrupted: restoring the current generation")
        self._settle()
        current = self.current()
        interrupted = self._journal_generation(data)
        backend = interrupted.backend if interrupted is not None else "sysvinit"
        target = current or Generation(backend, "", ())
        if interrupted is not None and interrupted.path == target.path:
            interrupted = None  # it had been recorded: it is the target itself
        # Not recorded yet: what it began to stop is the target's. Finish those
        # stops (the signal may already be sent), so they start again below.
        noted = (self._noted_stops() if current is not None and current.path == data.get("old")
                 else set())
        unsafe, down = self._restore(target, interrupted, noted, "the interrupted switch")
        if unsafe:
            raise DeployError(self._left_message(
                "a previous switch was interrupted and the current generation could not be "
                "restored", unsafe + down))
        self._clear_journal()
        if down:
            message = ("the interrupted switch was undone, but processes of the current "
                       "generation are not running:\n" + "\n".join(f"  {d}" for d in down))
            if strict:
                raise DeployError(message + "\nsee 'procmgmt status'; a switch to a fixed "
                                  "model starts them")
            for line in message.splitlines():
                self.say(line)
        return True

    def _left_message(self, head: str, left: list[str]) -> str:
        return (head + "; what is left:\n" + "\n".join(f"  {line}" for line in left) + "\n"
                "the journal is kept: fix the cause and run 'procmgmt repair' again, or run "
                "'procmgmt repair --abandon' to keep what runs as it is (then 'procmgmt "
                "doctor' lists the processes no generation explains)")

    def _restore(self, target: Generation, failed: Generation | None, noted: set[str],
                 failed_label: str) -> tuple[list[str], list[str]]:
        """Make exactly ``target`` (the recorded current generation, maybe empty) run,
        with its own backend and its own files, never ``failed``'s: the failed
        generation's backend may be unusable (systemd without root) and its files
        unreadable for the manager (a program file supervisord rejects).

        1. ``target``'s backend is set up with ``target``'s files (a supervisord
           rereads *its* program files);
        2. what only ``failed`` had and still runs is stopped (by ``failed``'s
           activator only when the backends differ, without setting it up);
        3. the stops noted in the journal are finished (``noted``), then
        4. every process of ``target`` that is not running is started.

        Returns what could not be done, one line each, in two lists: processes of
        ``failed`` that may still run (nothing records them: the journal must
        stay), and processes of ``target`` that are not running (the recorded
        generation with a process down: ``status`` shows it, and the next
        switch, which may well fix it, must not be blocked)."""
        self._forward = False
        unsafe: list[str] = []
        down: list[str] = []
        number = self.profile.current_number()
        label = f"generation {number}" if number is not None and target.processes \
            else "the previous generation"
        same = failed is not None and failed.backend == target.backend
        act = self.activator(target.backend)
        prepared = True
        if target.processes:
            try:
                for p in target.processes:
                    service_files.prepare(self.settings, p)
                act.prepare(target, failed if same else None)
            except Exception as exc:
                prepared = False
                down.append(f"{target.backend} could not be set up with {label}'s files: "
                            f"{_describe(exc)}")
        if failed is not None:
            act_f = act if same else self.activator(failed.backend)
            keep = {p.hash for p in target.processes} if same else set()
            # A process of the same name under the same manager is the target's own
            # unless the switch began to start the failed generation's version.
            shared = {p.name for p in target.processes} if same else set()
            notes = self._start_notes()
            running = []
            for p in failed.processes:
                if p.hash in keep or (p.name in shared and notes is not None
                                      and f"start {p.name}" not in notes):
                    continue
                try:
                    if act_f.status(failed, p).running:
                        running.append(p)
                except Exception as exc:
                    if notes is not None and not notes:
                        continue  # its backend was never set up: nothing of it runs
                    unsafe.append(f"{p.name} of {failed_label} ({failed.backend}) may still "
                                f"run: its status cannot be read ({_describe(exc)})")
            if running:
                self.say(f"stopping what only {failed_label} had: "
                         + ", ".join(p.name for p in running))
                out = self._stop_all(act_f, failed, running)
                for name, err in out.failed.items():
                    unsafe.append(f"{name} of {failed_label} ({failed.backend}) may still run: "
                                f"{_describe(err)}")
        if target.processes and prepared:
            try:
                for p in reversed(target.processes):
                    if p.name in noted and act.status(target, p).running:
                        self.say(f"stopping {p.name} (its stop was interrupted)")
                        act.stop_and_wait(target, p)
                held = handstop.held(self.settings, target)  # stay stopped by hand
                dead = [p for p in target.processes
                        if p.name not in held and not act.status(target, p).running]
            except Exception as exc:
                down.append(f"the processes of {label} ({target.backend}) cannot be checked: "
                            f"{_describe(exc)}")
                dead = []
            out = self._start_all(act, target, dead, _Timeline())
            for name, err in out.failed.items():
                down.append(f"{name} of {label} ({target.backend}) is not running: "
                            f"{_describe(err)}")
            for p in dead:
                if p.name not in out.failed and p.name not in out.done:
                    down.append(f"{p.name} of {label} ({target.backend}) is not running: "
                                "not started, a process it depends on did not start")
        elif target.processes:
            down.append(f"the processes of {label} ({target.backend}) that are not running "
                        "could not be started")
        cleanups: list[tuple[Activator, Generation, Generation | None]] = [
            (act, target, failed if same else None)]
        if failed is not None and not same:
            cleanups.append((self.activator(failed.backend),
                             Generation(failed.backend, "", ()), failed))
        for act_x, gen, prev in cleanups:
            try:
                act_x.finish(gen, prev)
            except Exception as exc:
                # Nothing of it runs any more; what is left over is a manager's file.
                self.say(f"warning: could not clean up {gen.backend}: {_describe(exc)}")
        return unsafe, down

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

    # --- signals -------------------------------------------------------------------

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT and SIGTERM during a switch. Before the journal exists nothing was
        changed: stop at once. After it, the first signal is a failure like any
        other (what is in flight finishes, then the undo); a second one stops at
        once and leaves the journal. Only the main thread can handle signals."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._interrupts = 0

        def handler(signum: int, frame: object) -> None:
            self._interrupts += 1
            if not self._journaled or self._interrupts > 1:
                raise KeyboardInterrupt
            name = signal.Signals(signum).name
            # os.write: no lock a print in the interrupted code might hold.
            with contextlib.suppress(OSError):
                os.write(2, f"procmgmt: {name}: finishing what is in flight, then restoring "
                            "the previous generation (interrupt again to stop at once and "
                            "leave it to 'procmgmt repair')\n".encode())

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def _interrupted(self) -> bool:
        return self._interrupts > 0 and self._journaled

    def _check_interrupt(self) -> None:
        """Between steps: a pending first SIGINT/SIGTERM fails the switch here."""
        if self._interrupted():
            raise _SwitchInterruptedError

    # --- activation ----------------------------------------------------------------

    def _activate(self, old: Generation | None, new: Generation, plan: Plan) -> SwitchResult:
        init_state(self.settings)
        # Users and groups that are new come first: processes may run as them.
        fail_point("accounts")
        accounts.create_new(old, new, self.settings, self.say)
        act_new = self.activator(new.backend)
        same = old is not None and old.backend == new.backend
        act_old = self.activator(old.backend) if old is not None else act_new
        # Pid directories and logs first: a supervisor may open the logs as soon
        # as prepare hands it the new configuration.
        fail_point("files")
        for p in plan.start:
            service_files.prepare(self.settings, p)
        # The first step that changes what runs or what a manager reads: from here
        # on a crash or a failure needs the journal to find its way back.
        self._write_journal(old, new)
        self._forward = True
        checkpoint("journaled")
        fail_point("prepare")
        act_new.prepare(new, old if same else None)
        self._note_start("prepared")
        checkpoint("prepared")
        self._check_interrupt()
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
        act_start = act_new
        if (old is None or same) and act_new.applies_plans:
            self._apply(act_new, new, old, plan)  # the manager diffs and switches itself
            stopped = list(plan.stop)
            act_start = Applied(act_new, {p.name for p in plan.start})
            self._act_locks[id(act_start)] = self._act_locks[id(act_new)]  # one manager
        elif old is not None and plan.stop:
            out = self._stop_all(act_old, old, plan.stop, cancel=self._interrupted)
            done = set(out.done)  # once: built per item it was quadratic (3 s for 10,000)
            stopped = [p for p in plan.stop if p.name in done]
            if not out.ok:
                raise _RunFailedError(out)
        out = self._start_all(act_start, new, to_start, timeline, cancel=self._interrupted)
        self._save_timeline(timeline)
        if not out.ok:
            raise _RunFailedError(out)
        fail_point("finish")
        act_new.finish(new, old if same else None)
        if old is not None and not same:
            act_old.finish(Generation(old.backend, "", ()), old)
        started = set(out.done)
        result.started = [p.name for p in to_start if p.name in started]
        result.stopped = [p.name for p in stopped]
        return result

    def _apply(self, act: Activator, new: Generation, old: Generation | None,
               plan: Plan) -> None:
        """Offer the whole plan to ``act`` (:meth:`Activator.apply`). What it may stop
        and start is noted first, as the per-process loops note each one, so that
        an undo or ``repair`` after a failure inside the manager finds them."""
        for p in plan.stop:
            self._note_stop(p.name)
        for p in plan.start:
            self._note_start(f"start {p.name}")
        with self._serial(act):
            act.apply(new, old, plan)

    def _fail(self, old: Generation | None, new: Generation, exc: BaseException) -> NoReturn:
        """A switch failed (or was interrupted once): put the previous generation back,
        drop the journal, and raise the error. Before the journal was written nothing
        had changed: just raise. When restoring is impossible the journal stays and
        the error says what is left."""
        interrupted = isinstance(exc, _SwitchInterruptedError) or (
            isinstance(exc, _RunFailedError) and exc.outcome.cancelled and self._interrupted())
        if interrupted:
            reasons = "interrupted"
        elif isinstance(exc, _RunFailedError):
            reasons = "; ".join(_named(name, _describe(e))
                                for name, e in exc.outcome.failed.items())
        else:
            reasons = _describe(exc)
        exit_code = exc.exit_code if isinstance(exc, ProcmgmtError) else 1
        if not self._journaled:
            # Nothing runs differently yet, but the accounts may already be made
            # (a log file that cannot be prepared fails after them): they go too.
            accounts.undo_created(old, self.settings, self.say)
            if isinstance(exc, ProcmgmtError) or not isinstance(exc, Exception):
                raise exc
            if isinstance(exc, OSError):
                raise storage_error(exc) from None
            raise exc  # a bug: the CLI logs its traceback
        if not self.options.rollback_on_failure:
            raise DeployError(f"switch failed: {reasons}; left as it is (--no-rollback); "
                              "run 'procmgmt repair' to restore")
        self.say(("interrupted" if interrupted else "switch failed")
                 + ": restoring the previous generation")
        target = old or Generation(new.backend, "", ())
        unsafe, down = self._restore(target, new if new.path != target.path else None, set(),
                                     "the new generation")
        if unsafe:
            raise DeployError(self._left_message(f"switch failed: {reasons}; the previous "
                                                 "generation could not be restored",
                                                 unsafe + down))
        self._clear_journal()
        # The accounts this switch created are not needed by what runs now.
        accounts.undo_created(old, self.settings, self.say)
        if down:
            raise DeployError(f"switch failed: {reasons}; the previous generation was restored "
                              "except for processes that are not running:\n"
                              + "\n".join(f"  {d}" for d in down)
                              + "\nsee 'procmgmt status'")
        if interrupted:
            raise InterruptError("interrupted: the previous generation was restored")
        if not isinstance(exc, (ProcmgmtError, OSError, _RunFailedError)):
            self.say(f"switch failed: {_describe(exc)}; the previous generation was restored")
            raise exc  # a bug: the CLI logs its traceback
        err = DeployError(f"switch failed: {reasons}; the previous generation was restored")
        err.exit_code = exit_code
        raise err from None

    def _stop_all(self, act: Activator, gen: Generation, procs: list[DeployedProcess],
                  cancel: Callable[[], bool] | None = None) -> Outcome:
        by_name = {p.name: p for p in procs}
        deps = {p.name: list(p.dependencies) for p in gen.processes}
        waits = reverse_waits(deps)

        def stop(name: str) -> Callable[[], bool] | None:
            self.say(f"stopping {name}")
            self.progress.count("stopping")
            self._note_stop(name)
            checkpoint("stopping")
            fail_point("stop")
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

        # Stops in progress finish even when cancelled: a process left half-way down
        # would die after the undo found it running.
        return run_dag([p.name for p in procs], waits, stop, self.options.max_parallel,
                       cancel=cancel, inline=lambda name: act.stops_at_once(by_name[name]))

    def _start_all(self, act: Activator, gen: Generation, procs: list[DeployedProcess],
                   timeline: _Timeline, cancel: Callable[[], bool] | None = None) -> Outcome:
        by_name = {p.name: p for p in procs}
        waits = {p.name: set(p.dependencies) for p in procs}
        # Shared by every check of this run: one inotify instance for the log files
        # (only when a log-line check needs one), one reading of the listening
        # sockets per pass of the scheduler.
        files = (FileWatch.open() if any((p.readiness or {}).get("kind") == rd.LogLine.kind
                                         for p in procs) else None)
        listening = RecentListenTable()

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
                                  marker=deployment_id(self.settings),
                                  listening=listening, files=files)
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
                self._note_start(f"start {name}")
                fail_point("start")
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
                    fail_point("ready")
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

            # The scheduler waits on what the readiness check waits on, once it began,
            # and asks no sooner than it can succeed (the start grace).
            return Watched(probe, lambda: watched_sources(phase[0]) if phase[0] else (),
                           not_before=lambda: not_before(phase[0]) if phase[0] else None)

        # A readiness wait is abandoned when cancelled: the undo stops the process.
        try:
            return run_dag([p.name for p in procs], waits, start, self.options.max_parallel,
                           cancel=cancel, drain=False,
                           inline=lambda name: act.starts_at_once(by_name[name]))
        finally:
            if files is not None:
                files.close()

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
        """Compact JSON (read by ``analyze critical-chain``): indented, json's
        pure-Python encoder took 80 ms of a start of 1,000, the C one a tenth."""
        with contextlib.suppress(OSError):
            fsutil.write_atomic(self.timeline_path,
                                json.dumps(timeline.to_json(), sort_keys=True,
                                           separators=(",", ":")),
                                fsutil.PRIVATE)
