"""Start, stop and restart single processes of the deployed generation.

The day-two counterpart of a switch: the same profile lock, the same
readiness-gated parallel start and dependents-first stop (the engine's
:meth:`~procmgmt.deploy.engine.Engine.start_processes` and
:meth:`~procmgmt.deploy.engine.Engine.stop_processes`), applied to the named
processes and what the dependency graph ties to them:

- ``start`` starts what the named processes need first (their dependencies,
  transitively, when not running), then them;
- ``stop`` refuses while processes that depend on a named one are not
  stopped as well, and lists them; with ``with_dependents`` they stop first;
- ``restart`` stops the named processes only (their dependents keep
  running: a restart is short) and starts them and anything they need;
- ``reload`` asks running processes that declare a ``reload_signal`` to
  read their configuration again, through the manager (nothing stops).

What stops here is recorded as stopped by hand (:mod:`procmgmt.deploy.handstop`),
so the next switch does not start it again; what starts here is forgotten.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from procmgmt.backends.base import Activator
from procmgmt.deploy import handstop
from procmgmt.deploy.engine import Engine, profile_lock
from procmgmt.deploy.options import Options
from procmgmt.deploy.scheduler import Outcome
from procmgmt.deploy.state import init_state
from procmgmt.errors import DeployError, GenerationError, UsageError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings
from procmgmt.suggest import did_you_mean


@dataclass
class ControlResult:
    """What one start/stop/restart did, by name."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    #: Named processes that were already in the asked-for state.
    unchanged: list[str] = field(default_factory=list)


def dependents(gen: Generation, names: set[str]) -> list[DeployedProcess]:
    """Processes that depend on any of ``names``, transitively (not ``names``
    themselves), in start order."""
    found = set(names)
    changed = True
    while changed:
        changed = False
        for p in gen.processes:
            if p.name not in found and found.intersection(p.dependencies):
                found.add(p.name)
                changed = True
    return [p for p in gen.processes if p.name in found - names]


def dependencies(gen: Generation, names: set[str]) -> list[DeployedProcess]:
    """What ``names`` need, transitively (not ``names`` themselves), in start order."""
    by_name = gen.by_name()
    found: set[str] = set()
    todo = list(names)
    while todo:
        for dep in by_name[todo.pop()].dependencies:
            if dep in by_name and dep not in found and dep not in names:
                found.add(dep)
                todo.append(dep)
    return [p for p in gen.processes if p.name in found]


class Control:
    """start/stop/restart of named processes of one profile's current generation."""

    def __init__(self, settings: Settings, out: TextIO | None = None,
                 options: Options | None = None) -> None:
        self.settings = settings
        self.engine = Engine(settings, out=out, options=options)

    def _current(self) -> tuple[Generation, Activator]:
        if os.path.exists(self.engine.journal_path):
            raise GenerationError("a switch of profile "
                                  f"{self.settings.profile!r} was interrupted: run "
                                  "'procmgmt repair' first")
        gen = self.engine.current()
        if gen is None:
            raise GenerationError(f"nothing is deployed in profile {self.settings.profile!r} "
                                  "(see 'procmgmt switch MODEL')")
        return gen, self.engine.activator(gen.backend)

    @staticmethod
    def resolve(gen: Generation, names: Sequence[str], all_: bool) -> list[DeployedProcess]:
        """The named processes in start order; UsageError naming each unknown one."""
        if all_:
            if names:
                raise UsageError("give process names or --all, not both")
            return list(gen.processes)
        if not names:
            raise UsageError("name the processes to act on, or --all")
        known = gen.by_name()
        unknown = [n for n in dict.fromkeys(names) if n not in known]
        if unknown:
            raise UsageError("; ".join(
                f"no process {n!r} in the current generation" + did_you_mean(n, known)
                for n in unknown) + f" (its processes: {', '.join(known)})")
        wanted = set(names)
        return [p for p in gen.processes if p.name in wanted]

    def _running(self, act: Activator, gen: Generation, p: DeployedProcess) -> bool:
        return act.status(gen, p).running

    def start(self, names: Sequence[str], all_: bool = False) -> ControlResult:
        """Start the named processes and, first, what they need."""
        with self._locked():
            gen, act = self._current()
            targets = self.resolve(gen, names, all_)
            return self._start(gen, act, targets)

    def stop(self, names: Sequence[str], all_: bool = False,
             with_dependents: bool = False) -> ControlResult:
        """Stop the named processes (dependents first, with ``with_dependents``)."""
        with self._locked():
            gen, act = self._current()
            targets = self.resolve(gen, names, all_)
            wanted = {p.name for p in targets}
            held = handstop.held(self.settings, gen)
            others = [p for p in dependents(gen, wanted) if p.name not in held]
            if others and not with_dependents:
                listed = ", ".join(
                    f"{p.name} ({'running' if self._running(act, gen, p) else 'down'})"
                    for p in others)
                raise UsageError(f"{', '.join(sorted(wanted))}: needed by {listed}; stop "
                                 "them as well with --with-dependents (they stop first), or "
                                 "name them too")
            return self._stop(gen, act, [p for p in gen.processes
                                         if p.name in wanted | {o.name for o in others}])

    def restart(self, names: Sequence[str], all_: bool = False) -> ControlResult:
        """Stop the named processes, then start them (and what they need)."""
        with self._locked():
            gen, act = self._current()
            targets = self.resolve(gen, names, all_)
            result = self._stop(gen, act, targets, record=False)
            again = self._start(gen, act, targets)
            again.stopped = result.stopped
            return again

    def reload(self, names: Sequence[str], all_: bool = False) -> ControlResult:
        """Send each named process its declared reload signal through the backend
        (the init script's ``reload``, ``systemctl reload``, supervisord's
        ``signalProcess``). Refuses, naming them, processes that declare no reload
        signal (unless ``all_``: those are skipped) and processes that are not running."""
        with self._locked():
            gen, act = self._current()
            targets = self.resolve(gen, names, all_)
            without = [p.name for p in targets if not p.reload_signal]
            if without and not all_:
                raise UsageError(f"{', '.join(without)}: declares no reload_signal in the "
                                 "model; use 'procmgmt restart' instead")
            targets = [p for p in targets if p.reload_signal]
            down = [p.name for p in targets if not self._running(act, gen, p)]
            if down:
                raise DeployError(f"cannot reload {', '.join(down)}: not running "
                                  "(start it with 'procmgmt start')")
            result = ControlResult(unchanged=without)
            failed = [p.name for p in targets if act.activity(gen, p, "reload") != 0]
            if failed:
                raise DeployError(f"could not reload {', '.join(failed)}")
            result.reloaded = [p.name for p in targets]
            return result

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return profile_lock(self.settings, out=self.engine.out,
                            wait=self.engine.options.wait_for_lock)

    def _start(self, gen: Generation, act: Activator,
               targets: list[DeployedProcess]) -> ControlResult:
        wanted = {p.name for p in targets}
        need = {p.name for p in dependencies(gen, wanted)} | wanted
        init_state(self.settings)
        act.prepare(gen, None)  # the manager up (supervisord), its files current
        down = [p for p in gen.processes if p.name in need and not self._running(act, gen, p)]
        result = ControlResult(unchanged=[p.name for p in targets if p not in down])
        outcome = self.engine.start_processes(act, gen, down)
        result.started = [p.name for p in down if p.name in outcome.done]
        # Asked to run: no longer stopped by hand, even when the start failed (it is
        # then down, and the next switch tries again).
        handstop.clear(self.settings, result.started + list(outcome.failed) + result.unchanged)
        self.engine.progress.close()
        act.finish(gen, None)  # e.g. systemd's daemon-reload after its links changed
        _raise_failures("start", outcome)
        return result

    def _stop(self, gen: Generation, act: Activator, procs: list[DeployedProcess],
              record: bool = True) -> ControlResult:
        running = [p for p in procs if self._running(act, gen, p)]
        result = ControlResult(unchanged=[p.name for p in procs if p not in running])
        outcome = self.engine.stop_processes(act, gen, running)
        result.stopped = [p.name for p in running if p.name in outcome.done]
        if record:
            handstop.mark(self.settings, [p for p in procs if p.name in
                                          set(result.stopped) | set(result.unchanged)])
        self.engine.progress.close()
        act.finish(gen, None)
        _raise_failures("stop", outcome)
        return result


def _raise_failures(verb: str, outcome: Outcome) -> None:
    if not outcome.ok:
        raise DeployError("; ".join(f"could not {verb} {name}: {exc}"
                                    for name, exc in outcome.failed.items()))

