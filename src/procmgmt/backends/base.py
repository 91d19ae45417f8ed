"""The contract every backend implements.

A backend turns each :class:`ProcessSpec` into a *native model* (a plain
dict in the manager's own vocabulary), lets the user's per-backend override
patch it, and renders it into :class:`File` objects. Rendering is pure (no
I/O), which makes every generator golden-testable. Deploying is the
:class:`Activator`'s job: the engine decides *what* to stop and start and in
which order; the activator knows *how* for its manager.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.model.spec import ProcessSpec
from procmgmt.pids import pid_alive, read_pid_file
from procmgmt.settings import Settings


@dataclass(frozen=True)
class File:
    """A generated file (or symlink), relative to the process's store entry."""

    path: str
    content: str | None = None
    mode: int = 0o644
    symlink: str | None = None

    def __post_init__(self) -> None:
        if (self.content is None) == (self.symlink is None):
            raise ValueError(f"{self.path}: a File has either content or a symlink target")
        if self.path.startswith("/") or ".." in self.path.split("/"):
            raise ValueError(f"{self.path}: generated paths are relative and stay inside")


@dataclass(frozen=True)
class Capabilities:
    """What a backend can express natively, shown by ``procmgmt backends``."""

    #: "daemon" or "foreground": the mode chosen when a process offers both.
    prefers: str
    #: How dependencies are honoured: "native", "emulated" or "none".
    dependencies: str
    #: How ordering is written down in the manager's terms.
    ordering: str
    #: Whether processes can run as another user.
    user_switching: bool
    #: Whether an unprivileged user can deploy with it.
    user_mode: bool
    #: "run" when our tests run it for real on Linux, "generated" when only validated.
    tested: str
    #: Readiness handling: "native", "emulated" or "none".
    readiness: str = "emulated"
    notes: str = ""


@dataclass(frozen=True)
class BuildContext:
    """What a translator may look at besides its own spec.

    Frozen, because the indexes below are computed once from ``specs`` and
    must not go stale; only ``warnings`` grows while a model is rendered."""

    settings: Settings
    #: Every spec of the model by name (dependency lookups).
    specs: Mapping[str, ProcessSpec]
    #: Warnings collected while translating (never silently dropped features).
    warnings: list[str] = field(default_factory=list)

    def warn(self, spec: ProcessSpec, backend: str, message: str) -> None:
        """Record that ``backend`` cannot honour something of ``spec``."""
        self.warnings.append(f"{backend}: {spec.name}: {message}")

    def dependents(self, name: str) -> tuple[str, ...]:
        """Names of the specs that depend on ``name``, sorted."""
        return self._dependents_index.get(name, ())

    @cached_property
    def _dependents_index(self) -> dict[str, tuple[str, ...]]:
        """Dependency name -> sorted dependents, built on first use. Backends ask
        :meth:`dependents` for every process; scanning all specs each time made
        rendering quadratic (10,000 processes: 30 s)."""
        index: dict[str, list[str]] = {}
        for spec in self.specs.values():
            for dep in spec.dependencies:
                index.setdefault(dep, []).append(spec.name)
        return {dep: tuple(sorted(names)) for dep, names in index.items()}


def deep_merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: dicts merge, anything else in ``patch`` replaces; None deletes."""
    result: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def apply_override(native: dict[str, Any], override: Any) -> dict[str, Any]:
    """Apply a user's override: a dict is deep-merged, a callable returns the new model."""
    if override is None:
        return native
    if callable(override):
        result = override(copy.deepcopy(native))
        if not isinstance(result, dict):
            raise TypeError(f"override function returned {type(result).__name__}, expected dict")
        return result
    return deep_merge(native, override)


@dataclass(frozen=True)
class ProcessStatus:
    """Whether a deployed process runs, and as which PID."""

    name: str
    running: bool
    pid: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class LogSource:
    """Where the manager keeps a process's output (stdout and stderr), for ``logs``."""

    #: Files the output is appended to (one, or stdout's and stderr's).
    files: tuple[str, ...] = ()
    #: ``journalctl`` arguments that select the process's journal (systemd), e.g.
    #: ``("-u", "web.service")``; empty when the output is in files.
    journal: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tool:
    """A program or file an activator needs on this machine (checked by the pre-flight
    of a switch, before anything is stopped)."""

    #: What it is, for the message ("rc.subr", "launchctl").
    name: str
    #: An absolute path, or a command name looked up on ``$PATH``.
    path: str
    #: Why it is needed and what to do, appended to "not found".
    hint: str = ""


def missing_tools(tools: Iterable[Tool]) -> list[str]:
    """A message for every tool that is not there (files: exist; commands: on PATH)."""
    problems = []
    for tool in tools:
        if os.path.isabs(tool.path):
            found = os.path.exists(tool.path)
        else:
            found = shutil.which(tool.path) is not None
        if not found:
            where = tool.path if os.path.isabs(tool.path) else f"{tool.path!r} on PATH"
            problems.append(f"{tool.name} not found ({where})"
                            + (f": {tool.hint}" if tool.hint else ""))
    return problems


class Activator(ABC):
    """Starts and stops the processes of generations with one process manager."""

    #: True when start/stop/status may be called from several threads at once;
    #: otherwise the engine serializes the calls (readiness waits stay parallel).
    parallel_safe: bool = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def prepare(self, new: Generation, old: Generation | None) -> None:  # noqa: B027
        """Before any stop or start: bring up the manager itself, install files."""

    def required_tools(self, gen: Generation) -> list[Tool]:
        """The programs and files activating ``gen`` needs (none by default).

        Declared here, per backend, so the pre-flight of a switch can say
        that rc.subr or launchctl is missing before it stops anything,
        instead of stopping the running service and failing at the first start."""
        return []

    def preflight(self, gen: Generation) -> list[str]:
        """Problems that would make activating ``gen`` fail, found without changing
        anything: by default, every :meth:`required_tools` entry that is missing.
        Backends add checks of their manager (e.g. a reachable bus)."""
        return missing_tools(self.required_tools(gen))

    def started_pids(self, gen: Generation, proc: DeployedProcess) -> list[int]:
        """The pids the manager started for ``proc``: readiness proves that a port's
        listener is one of them or a descendant. By default the pid ``status``
        reports, and for a proxied daemon (``extra["wraps_daemon"]``) the daemon's
        pid from its pid file (the proxy waits for it; the daemon is no child of it)."""
        st = self.status(gen, proc)
        pids = [st.pid] if st.running and st.pid else []
        if proc.extra.get("wraps_daemon") and proc.pid_file:
            daemon = read_pid_file(proc.pid_file)
            if daemon and daemon not in pids and pid_alive(daemon):
                pids.append(daemon)
        return pids

    @abstractmethod
    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Start ``proc``.

        Either return once the manager reports it started (None), or ask the
        manager to start it and return a non-blocking probe (True once
        started, raises on failure) that the engine polls together with every
        other start in flight, before its readiness check or start grace."""

    @abstractmethod
    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Stop ``proc`` (of generation ``gen``, which may be the old one).

        Either return once it is stopped (None), or signal it and return a
        non-blocking probe (True once stopped, raises on failure) that the
        engine polls together with every other stop in flight."""

    @abstractmethod
    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """Is ``proc`` running, and with which PID?"""

    def start_and_wait(self, gen: Generation, proc: DeployedProcess) -> None:
        """``start``, then poll its probe (if any) until the manager reports it started."""
        probe = self.start(gen, proc)
        while probe is not None and not probe():
            time.sleep(0.01)

    def stop_and_wait(self, gen: Generation, proc: DeployedProcess) -> None:
        """``stop``, then poll its probe (if any) until the process is gone."""
        probe = self.stop(gen, proc)
        while probe is not None and not probe():
            time.sleep(0.01)

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """Run a named activity (start, stop, status, reload, restart...); exit status."""
        if activity == "start":
            self.start_and_wait(gen, proc)
            return 0
        if activity == "stop":
            self.stop_and_wait(gen, proc)
            return 0
        if activity == "status":
            st = self.status(gen, proc)
            print(f"{proc.name}: {'running' if st.running else 'stopped'}"
                  + (f" (pid {st.pid})" if st.pid else ""))
            return 0 if st.running else 3
        if activity == "restart":
            self.activity(gen, proc, "stop")
            self.start_and_wait(gen, proc)
            return 0
        raise NotImplementedError(activity)

    def diagnose(self, gen: Generation, proc: DeployedProcess) -> str:
        """Why ``proc`` may have died: by default the last lines of its log file
        (``extra["log_file"]`` of the manifest), for failure messages."""
        path = proc.extra.get("log_file")
        if not path:
            return ""
        try:
            with open(str(path), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 4000))
                lines = [ln for ln in f.read().decode(errors="replace").splitlines()
                         if ln.strip()][-10:]
        except OSError:
            return ""
        return ("last lines of " + str(path) + ":\n    " + "\n    ".join(lines)) if lines else ""

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """Where ``proc``'s output goes, for ``procmgmt logs``: by default the log file
        the manifest records (``extra["log_file"]``, the one :meth:`diagnose` reads).
        A backend whose manager keeps the output elsewhere says where."""
        path = proc.extra.get("log_file")
        return LogSource(files=(str(path),) if path else ())

    def finish(self, new: Generation, old: Generation | None) -> None:  # noqa: B027
        """After all stops and starts succeeded (e.g. shut an idle manager down)."""


class Backend(ABC):
    """One process manager: translate, render, activate."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @abstractmethod
    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The native model of ``spec`` (before overrides)."""

    @abstractmethod
    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """Files for one process from its (overridden) native model."""

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Facts the activator needs later, stored in the generation manifest."""
        return {}

    def generation_files(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[File]:
        """Generation-level files (base configs); none by default."""
        return []

    def validate(self, specs: Sequence[ProcessSpec],
                 ctx: BuildContext) -> list[tuple[str, str, str]]:
        """Backend-specific problems as (process name, field, message): values the
        format cannot represent. Empty by default."""
        return []

    def activator(self, settings: Settings) -> Activator:
        """The activator; backends that only generate raise UsageError here."""
        from procmgmt.errors import UsageError

        raise UsageError(
            f"the {self.name} backend only generates files on this platform; "
            "use 'procmgmt generate' and install them on a machine that runs it"
        )

    def render_process(self, spec: ProcessSpec, ctx: BuildContext) -> tuple[list[File],
                                                                           dict[str, Any]]:
        """translate -> override -> render, the single extension point of every backend."""
        native = self.translate(spec, ctx)
        native = apply_override(native, spec.override_for(self.name))
        return self.render(native, spec, ctx), self.manifest_extra(native, spec, ctx)


BackendFactory = Callable[[], Backend]
