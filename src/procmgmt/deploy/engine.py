"""The switch engine: move the system from the current generation to another.

Order of a switch (nix-processmgmt's, hardened):

1. take the profile lock (a concurrent switch waits, it never interleaves);
2. ``init-state``; let the activator prepare (start its manager, install files);
3. stop the obsolete processes in reverse dependency order;
4. start the new ones (and any kept one that is found dead) in dependency order;
5. only then record the new generation.

If a start fails, what was started is stopped and what was stopped is
started again, so the previous generation runs as before; the error says
which process failed and why. State directories are never touched.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

from procmgmt.backends import get_backend
from procmgmt.backends.base import Activator, DeployedProcess, Generation
from procmgmt.deploy.build import load_generation
from procmgmt.deploy.plan import Plan, compute_plan
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.state import init_state
from procmgmt.errors import DeployError, LockedError
from procmgmt.settings import Settings


@contextmanager
def profile_lock(settings: Settings, *, wait: bool = True,
                 out: TextIO | None = None) -> Iterator[None]:
    """Exclusive lock of one profile (a file lock, released by the kernel on crash)."""
    os.makedirs(settings.profiles_dir, exist_ok=True)
    path = os.path.join(settings.profiles_dir, f"{settings.profile}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


class Engine:
    """Deploys generations of one profile."""

    def __init__(self, settings: Settings, out: TextIO | None = None) -> None:
        self.settings = settings
        self.profile = Profile(settings)
        self.out = out if out is not None else sys.stdout
        self._activators: dict[str, Activator] = {}

    def say(self, line: str) -> None:
        """Progress output."""
        print(line, file=self.out, flush=True)

    def activator(self, backend: str) -> Activator:
        """The (cached) activator of ``backend``."""
        if backend not in self._activators:
            self._activators[backend] = get_backend(backend).activator(self.settings)
        return self._activators[backend]

    def current(self) -> Generation | None:
        """The deployed generation, None if nothing is deployed."""
        path = self.profile.current_path()
        return load_generation(path) if path else None

    def plan(self, new: Generation) -> Plan:
        """What switching to ``new`` would do."""
        return compute_plan(self.current(), new)

    def switch(self, new: Generation, register: Callable[[], int | None],
               *, dry_run: bool = False) -> SwitchResult:
        """Activate ``new``; ``register`` records the generation once everything runs."""
        with profile_lock(self.settings, out=self.out):
            old = self.current()
            plan = compute_plan(old, new)
            if dry_run:
                return SwitchResult(plan)
            t0 = time.monotonic()
            result = self._activate(old, new, plan)
            result.generation = register()
            result.seconds = time.monotonic() - t0
            return result

    def _dead_kept(self, act: Activator, new: Generation, plan: Plan) -> list[DeployedProcess]:
        dead = []
        for p in plan.keep:
            if not act.status(new, p).running:
                dead.append(p)
        return dead

    def _activate(self, old: Generation | None, new: Generation, plan: Plan) -> SwitchResult:
        init_state(self.settings)
        act_new = self.activator(new.backend)
        same = old is not None and old.backend == new.backend
        act_old = self.activator(old.backend) if old is not None else act_new
        act_new.prepare(new, old if same else None)
        revive = {p.name for p in self._dead_kept(act_new, new, plan)}
        if revive:
            self.say("found not running, starting again: " + ", ".join(sorted(revive)))
        start_names = {p.name for p in plan.start} | revive
        to_start = [p for p in new.processes if p.name in start_names]
        result = SwitchResult(plan)
        stopped: list[DeployedProcess] = []
        started: list[DeployedProcess] = []
        current: DeployedProcess | None = None
        try:
            for p in plan.stop:
                assert old is not None
                self.say(f"stopping {p.name}")
                act_old.stop(old, p)
                stopped.append(p)
            for p in to_start:
                self.say(f"starting {p.name}")
                current = p
                act_new.start(new, p)
                started.append(p)
                current = None
        except Exception as exc:
            if current is not None:
                started.append(current)  # it may be half up: stop it too
            self._undo(old, new, act_old, act_new, stopped, started, same)
            if isinstance(exc, DeployError):
                raise
            raise DeployError(f"switch failed: {exc}") from exc
        act_new.finish(new, old)
        if old is not None and not same:
            act_old.finish(Generation(old.backend, "", ()), old)
        result.started = [p.name for p in started]
        result.stopped = [p.name for p in stopped]
        return result

    def _undo(self, old: Generation | None, new: Generation, act_old: Activator,
              act_new: Activator, stopped: list[DeployedProcess],
              started: list[DeployedProcess], same: bool) -> None:
        """Put the previous generation back after a failed start."""
        self.say("switch failed: restoring the previous generation")
        for p in reversed(started):
            try:
                act_new.stop(new, p)
            except Exception as exc:  # keep restoring the rest
                self.say(f"  could not stop {p.name}: {exc}")
        if old is None:
            act_new.finish(Generation(new.backend, "", ()), None)
            return
        try:
            act_old.prepare(old, new if same else None)
        except Exception as exc:
            self.say(f"  could not prepare the previous generation: {exc}")
        order = {p.name: i for i, p in enumerate(old.processes)}
        for p in sorted(stopped, key=lambda p: order.get(p.name, 0)):
            try:
                act_old.start(old, p)
            except Exception as exc:
                self.say(f"  could not restart {p.name}: {exc}")
        if not same:
            act_new.finish(Generation(new.backend, "", ()), None)
