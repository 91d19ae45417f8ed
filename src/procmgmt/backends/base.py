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
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from procmgmt.errors import Problem, UsageError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.model.process import RESTART_POLICIES
from procmgmt.model.spec import ProcessSpec
from procmgmt.pids import pid_alive, read_pid_file
from procmgmt.settings import SettingField, Settings

if TYPE_CHECKING:
    from procmgmt.deploy.plan import Plan
    from procmgmt.model.process import Process


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


class ProcessMode(Enum):
    """The mode a backend picks when a process offers both a daemon and a foreground
    command (nix-processmgmt's table, section 1.1 of the reference)."""

    DAEMON = "daemon"
    FOREGROUND = "foreground"


class Support(Enum):
    """How a backend carries a feature of the model."""

    #: The manager itself does it (systemd's After=, Type=notify).
    NATIVE = "native"
    #: procmgmt generates something that does it (a proxy that waits, an sh probe).
    EMULATED = "emulated"
    #: Not possible: the feature is dropped with a build warning, never silently.
    WARNED = "no (warning)"
    #: Not possible: validation refuses a model that uses it.
    REFUSED = "refused"
    #: Nothing runs, so the question does not arise (the ``none`` backend).
    NOT_APPLICABLE = "n/a"


class Ordering(Enum):
    """How the generated files write the start order down."""

    #: Sequence numbers in file names (sysvinit's ``S<NN>``/``K<NN>`` links).
    SEQUENCE = "sequence numbers"
    #: Numeric priorities the manager starts lowest first (supervisord).
    PRIORITY = "priorities"
    #: Each dependency named in the dependent's file (After=, REQUIRE, --dep).
    EDGES = "declared dependencies"
    #: Generated code in the dependent waits for its dependencies (launchd's proxy).
    WAITS = "generated waits"
    #: The files carry no order: procmgmt's engine starts processes in order.
    ENGINE = "engine only"
    #: Nothing is started (the ``none`` backend writes specs).
    NONE = "none"


class Privilege(Enum):
    """Who can deploy with a backend."""

    ROOT = "root"
    UNPRIVILEGED = "unprivileged"


class Coverage(Enum):
    """What procmgmt's own test suite does with a backend on Linux."""

    #: Real processes started by the real manager (or, for sysvinit, the scripts).
    RUN = "run for real"
    #: Run for real, with the manager inside a container (systemd in systemd-nspawn).
    CONTAINER = "run for real in a container"
    #: Generated and checked (parsers, linters, command plans), the manager not run.
    GENERATED = "generated and validated"


class PidFiles(Enum):
    """Which processes the generated files track by a pid file; validation makes
    sure no two processes share one of these."""

    #: Every process, foreground ones too (init scripts find what they started by it).
    EVERY_PROCESS = "every process"
    #: Only daemons, and processes whose model names a pid file.
    DAEMONS = "daemons"


#: Readiness kinds the generated sh probes wait for (``procmgmt.readiness``);
#: ``notify`` needs a socket the manager listens on, so only the engine (and
#: systemd's Type=notify) waits for it.
SH_READINESS: frozenset[str] = frozenset({"tcp", "http", "command", "logline", "pidfile"})


#: Every restart policy (``procmgmt.model.process.RESTART_POLICIES``).
ALL_RESTART_POLICIES: frozenset[str] = frozenset(RESTART_POLICIES)


@dataclass(frozen=True)
class Lifecycle:
    """What a backend does with ``Process.restart*`` and ``stop_timeout``.

    The build refuses, located at the model's line, a value whose support is
    :attr:`Support.REFUSED` (:mod:`procmgmt.backends.lifecycle`), so a backend
    translates only what it declares here and nothing is dropped silently.
    The defaults describe a manager that can express none of it."""

    #: The policy the manager applies when the model sets none (its behaviour
    #: before the model could say); None: nothing runs (``none``).
    default_restart: str | None = "no"
    #: Policies the manager carries itself.
    restart_native: frozenset[str] = frozenset({"no"})
    #: Policies carried by generated code (the init scripts' supervising loop).
    restart_emulated: frozenset[str] = frozenset()
    #: How ``restart_delay`` and ``restart_max`` are carried.
    restart_delay: Support = Support.REFUSED
    restart_max: Support = Support.REFUSED
    #: Seconds from the stop signal to SIGKILL when the model sets no
    #: ``stop_timeout`` (None: the manager waits without killing).
    default_stop_timeout: float | None = None
    #: How ``stop_timeout`` is carried.
    stop_timeout: Support = Support.REFUSED
    #: How a ``liveness`` check is carried: no manager probes a running process
    #: with the model's check kinds, so it is emulated (the generated liveness
    #: wrapper of :mod:`procmgmt.backends.shared.liveness`) or refused.
    liveness: Support = Support.REFUSED

    def restart_support(self, policy: str) -> Support:
        """How ``policy`` is carried: native, emulated or refused."""
        if policy in self.restart_native:
            return Support.NATIVE
        if policy in self.restart_emulated:
            return Support.EMULATED
        return Support.REFUSED


@dataclass(frozen=True)
class Capabilities:
    """What a backend can express natively, shown by ``procmgmt backends`` and
    generated into the docs tables; the rules that used to be keyed on backend
    names (which backends need a pid file for every process, which can deploy)
    read these fields instead."""

    #: The mode chosen when a process offers both (None: the backend does not choose).
    prefers: ProcessMode | None
    #: How dependencies are honoured.
    dependencies: Support
    #: How the start order is written down, and in the manager's own terms.
    ordering: Ordering
    ordering_detail: str
    #: Whether processes can run as another user.
    user_switching: Support
    #: Who can deploy with it.
    privileges: frozenset[Privilege]
    #: What our tests do with it.
    tested: Coverage
    #: How the manager's files carry readiness checks when it starts things alone.
    readiness: Support
    #: The readiness kinds (``Readiness.kind``) the generated files wait for.
    readiness_kinds: frozenset[str]
    #: Which processes need a pid file of their own.
    pid_files: PidFiles = PidFiles.DAEMONS
    #: False when nothing can deploy its output (``none``: specs for later translation).
    deploys: bool = True
    #: Restart policies and stop timeouts.
    lifecycle: Lifecycle = Lifecycle()
    notes: str = ""

    @property
    def unprivileged(self) -> bool:
        """An ordinary user can deploy with it."""
        return Privilege.UNPRIVILEGED in self.privileges


@dataclass(frozen=True)
class BuildContext:
    """What a translator may look at besides its own spec.

    Frozen, because the indexes below are computed once from ``specs`` and
    must not go stale; only ``warnings`` and ``natives`` grow while a model is rendered."""

    settings: Settings
    #: Every spec of the model by name (dependency lookups).
    specs: Mapping[str, ProcessSpec]
    #: Warnings collected while translating (never silently dropped features).
    warnings: list[str] = field(default_factory=list)
    #: Process name -> where the model defines it: (instance key, file, line).
    origins: Mapping[str, tuple[str, str | None, int | None]] = field(default_factory=dict)
    #: Process name -> the model's own (validated, not normalized) Process, for a
    #: backend that writes the model's properties as given (``none``).
    processes: Mapping[str, Process] = field(default_factory=dict)
    #: Process name -> its native model after the overrides, recorded by
    #: :meth:`Backend.render_process`: an export whose output is one document for
    #: the whole generation (process-compose, Kubernetes) assembles it in
    #: ``generation_files`` from these, so the user's overrides reach it.
    natives: dict[str, dict[str, Any]] = field(default_factory=dict)

    def problem(self, name: str, field_name: str, message: str) -> Problem:
        """A :class:`Problem` about process ``name``, located like model validation's
        (instance key, model file and line) so backend and model problems read alike."""
        key, file, line = self.origins.get(name, (name, None, None))
        return Problem(message, key, field_name, file, line)

    def problems(self, rows: Iterable[tuple[str, str, str]]) -> list[Problem]:
        """:meth:`problem` for every (process name, field, message) row."""
        return [self.problem(*row) for row in rows]

    def warn(self, spec: ProcessSpec, backend: str, message: str) -> None:
        """Record that ``backend`` cannot honour something of ``spec``."""
        self.warnings.append(f"{backend}: {spec.name}: {message}")

    def dependents(self, name: str) -> tuple[str, ...]:
        """Names of the specs that depend on ``name``, sorted."""
        return self._dependents_index.get(name, ())

    def which(self, name: str) -> str | None:
        """``shutil.which(name)``: a translator that looks at the host does so
        here, so the render cache (:mod:`procmgmt.deploy.rendercache`) records
        the answer and renders again when it changes."""
        return shutil.which(name)

    def is_executable(self, path: str) -> bool:
        """Whether ``path`` is an executable file on this host (recorded as :meth:`which`)."""
        return os.path.isfile(path) and os.access(path, os.X_OK)

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
    #: How often the manager restarted it by its restart policy, where the manager
    #: counts (systemd's NRestarts, s6's death tally, the init scripts' loop); None:
    #: not known.
    restarts: int | None = None


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

    def starts_at_once(self, proc: DeployedProcess) -> bool:
        """True when :meth:`start` of ``proc`` never blocks (it hands the start to a
        supervisor that is already there and returns a probe): the engine then
        calls it on its own thread, as it does such stops. Handed to workers, a
        thousand of them went out eight per round of the scheduler's loop, each
        round asking every pending probe, so the last start went out seconds
        after its supervisor was ready for it."""
        return False

    def stops_at_once(self, proc: DeployedProcess) -> bool:
        """True when :meth:`stop` of ``proc`` never blocks (it signals and returns a
        probe, or finds nothing to stop): the engine then calls it on its own
        thread instead of handing it to a worker. A hand-off per process costs
        more than such a stop: a thousand of them in eight workers contending for
        the interpreter lock cost several times the stops' own work."""
        return False

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
        if activity == "reload":
            return self.signal_reload(gen, proc)
        raise NotImplementedError(activity)

    def signal_reload(self, gen: Generation, proc: DeployedProcess) -> int:
        """Send ``proc``'s reload signal (HUP when it declares none) to the process
        that reads it: the daemon of a proxied daemon (the proxy forwards only HUP),
        else the pid the manager reports. Exit status 0, or 1 (with a message on
        stderr) when nothing runs or the signal cannot be sent. The default
        ``reload`` of managers without one of their own."""
        pids = self.started_pids(gen, proc)
        if not pids:
            print(f"{proc.name}: not running", file=sys.stderr)
            return 1
        name = proc.reload_signal or "HUP"
        try:
            os.kill(pids[-1], getattr(signal, f"SIG{name}"))
        except OSError as exc:
            print(f"{proc.name}: cannot send SIG{name} to pid {pids[-1]}: "
                  f"{exc.strerror}", file=sys.stderr)
            return 1
        print(f"{proc.name}: sent SIG{name} (pid {pids[-1]})")
        return 0

    def manager_problems(self, gen: Generation) -> list[str]:
        """What is wrong with the manager itself that no process's status shows
        (a supervision tree whose scanner died: its processes still run and
        are restarted, but nothing new is picked up); one sentence each, saying
        what puts it right. ``status`` prints them. By default none."""
        return []

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

    def apply(self, new: Generation, old: Generation | None, plan: Plan) -> None:
        """Take the whole plan of a switch (a first deployment, or between two
        generations of this backend) in one step.

        A manager that diffs configurations itself (``supervisorctl update``,
        ``s6-rc-update``) stops what ``plan.stop`` names and starts what
        ``plan.start`` names, and returns once the manager reports them
        started; the engine then runs each started process's readiness check
        in dependency order, as for every backend, and undoes a failure
        through :meth:`stop` and :meth:`start`. Not implemented by default:
        the engine stops and starts process by process, in dependency order."""
        raise NotImplementedError

    @property
    def applies_plans(self) -> bool:
        """True when :meth:`apply` takes the switch this activator was just prepared
        for (read after :meth:`prepare`). By default: whenever it implements
        :meth:`apply`; an activator may take only some switches (supervisord:
        the undeploy of every program)."""
        return type(self).apply is not Activator.apply

    def finish(self, new: Generation, old: Generation | None) -> None:  # noqa: B027
        """After all stops and starts succeeded (e.g. shut an idle manager down)."""


class Backend(ABC):
    """One process manager: translate, render, activate."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: The backend's own ``PROCMGMT_*`` settings: they join the settings table
    #: (``--help``, docs/settings) and are read through :meth:`SettingField.read`.
    own_settings: ClassVar[tuple[SettingField, ...]] = ()

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

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Backend-specific problems: values the format cannot represent, located
        with :meth:`BuildContext.problem` like model validation's. Empty by default."""
        return []

    def activator(self, settings: Settings) -> Activator:
        """The activator; backends that only generate raise UsageError here."""
        raise UsageError(
            f"the {self.name} backend only generates files on this platform; "
            "use 'procmgmt generate' and install them on a machine that runs it"
        )

    def render_process(self, spec: ProcessSpec, ctx: BuildContext) -> tuple[list[File],
                                                                           dict[str, Any]]:
        """translate -> override -> render, the single extension point of every backend."""
        native = self.translate(spec, ctx)
        native = apply_override(native, spec.override_for(self.name))
        ctx.natives[spec.name] = native
        return self.render(native, spec, ctx), self.manifest_extra(native, spec, ctx)


BackendFactory = Callable[[], Backend]
