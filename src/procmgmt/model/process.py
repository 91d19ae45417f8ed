"""The process-manager-agnostic description of one process.

``Process`` carries every parameter of nix-processmgmt's
``createManagedProcess``. It stores what the user wrote, unchecked: type and
consistency checks live in :mod:`procmgmt.validate`, which reports every
problem at once instead of failing on the first. ``Instance`` wraps a
process with free-form metadata (port, DNS name, ...) that other instances
and tests read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from procmgmt.model.credentials import Credentials

#: Overrides for one backend: a dict deep-merged into the backend's native
#: model, or a function from native model to a new native model.
Override = Mapping[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]

#: Restart policies of ``Process.restart``, in the order the docs list them.
RESTART_POLICIES = ("no", "on-failure", "always")
#: The window ``Process.restart_max`` counts restarts in, in seconds: systemd's
#: StartLimitIntervalSec, s6-permafailon's seconds, the init scripts' loop.
RESTART_WINDOW = 60

#: Marker meaning "leave the default": lets ``daemon=None`` say "cannot daemonize".
_UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()

_PACKAGE_DIR = __file__.rsplit("/model/", 1)[0]


def _caller_origin() -> tuple[str | None, int | None]:
    """File and line of the user code that created the object.

    Skips procmgmt's own frames so the line points into the model file or
    the user's constructor, where the mistake can be fixed.
    """
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<"):
            return filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


@dataclass(frozen=True, eq=False)
class Process:
    """One managed process, described once for every process manager."""

    #: Identifier used for file, unit and program names; defaults to ``instance_name``.
    name: str | None = None
    #: Human-readable text (LSB header, systemd Description=); defaults to ``name``.
    description: str | None = None
    #: Shell snippet run before the process starts (as root when privileged): mkdir, initdb...
    initialize: str = ""
    #: Executable usable both in the foreground and as a self-daemonizing process.
    process: str | None = None
    #: Arguments common to both modes.
    args: Sequence[str] = ()
    #: Executable for daemon mode (forks, writes a pid file); None: cannot daemonize.
    daemon: str | None = _UNSET
    #: Appended to ``args`` in daemon mode.
    daemon_extra_args: Sequence[str] = ()
    #: Full daemon argument list (replaces ``args + daemon_extra_args``).
    daemon_args: Sequence[str] | None = None
    #: Executable for foreground mode (the manager supervises it); None: none.
    foreground_process: str | None = _UNSET
    #: Appended to ``args`` in foreground mode (``-g 'daemon off;'``, ``-DFOREGROUND``).
    foreground_process_extra_args: Sequence[str] = ()
    #: Full foreground argument list (replaces ``args + foreground_process_extra_args``).
    foreground_process_args: Sequence[str] | None = None
    #: Unique name of this instance: default ``name`` and pid file name.
    instance_name: str | None = None
    #: Explicit pid file; None derives ``<pid dir>/<instance name>.pid``.
    pid_file: str | None = None
    #: The program whose PID the daemon's pid file holds, when that is not the
    #: daemon command itself (``pg_ctl`` starts ``postgres``, which writes
    #: ``postmaster.pid``). Init systems that check the pid file's process by
    #: name (BSD rc.subr's ``procname``) need it to recognise the process.
    pid_file_program: str | None = None
    #: Directories (or prefixes with a ``bin/``) prepended to PATH.
    path: Sequence[str] = ()
    #: Environment variables of the process.
    environment: Mapping[str, str] = field(default_factory=dict)
    #: Working directory.
    directory: str | None = None
    #: umask, as an int (0o022) or an octal string ("022").
    umask: int | str | None = None
    #: Nice level (-20..19).
    nice: int | None = None
    #: User to run as; ignored when user changes are disabled.
    user: str | None = None
    #: Other processes that must run first (objects, not names).
    dependencies: Sequence[Process] = ()
    #: Users and groups to create for this process.
    credentials: Credentials = field(default_factory=Credentials)
    #: Per-backend escape hatch, keyed by backend name.
    overrides: Mapping[str, Override] = field(default_factory=dict)
    #: Readiness declaration (see procmgmt.readiness); None: the backend's default.
    readiness: Any = None
    #: Signal that asks the process to stop ("INT", "QUIT", ...; None: TERM), sent
    #: by every backend (supervisord stopsignal, systemd KillSignal, the init
    #: scripts); after the stop timeout SIGKILL follows. Servers give SIGTERM
    #: different meanings: PostgreSQL waits for clients to disconnect (smart
    #: shutdown), SIGINT is its fast shutdown.
    stop_signal: str | None = None
    #: Signal that asks the process to reload its configuration ("HUP", "USR1",
    #: ...; None: it declares none and ``procmgmt reload`` refuses it): what the
    #: init scripts' ``reload``, systemd's ``ExecReload=`` and supervisord's
    #: ``signalProcess`` send.
    reload_signal: str | None = None
    #: What the manager does when the process exits by itself: "no" (it stays
    #: stopped), "on-failure" (started again after a non-zero exit status or a
    #: death by signal), "always" (started again after any exit). None: the
    #: backend's own behaviour, which differs between managers (systemd and the
    #: init scripts: no; supervisord and launchd: on-failure; s6 and runit:
    #: always), so a model that relies on one states it. A backend that cannot
    #: carry the policy refuses the model (see the lifecycle table in
    #: docs/backends.md): none is dropped.
    restart: str | None = None
    #: Seconds to wait before each restart (the backoff); None: the backend's
    #: default (systemd 0.1 s, s6 and runit 1 s, launchd 10 s, supervisord 1 s
    #: more per failed attempt). Needs ``restart`` "on-failure" or "always".
    restart_delay: float | None = None
    #: Restarts allowed within :data:`RESTART_WINDOW` seconds; one more exit in
    #: that window leaves the process failed (crash-looping ends). None: no
    #: limit beyond the backend's own. Needs ``restart`` "on-failure" or "always".
    restart_max: int | None = None
    #: Seconds between the stop signal and SIGKILL when the process does not
    #: exit. None: the backend's default (10 s for the init scripts and
    #: supervisord's stopwaitsecs, systemd's DefaultTimeoutStopSec, launchd's
    #: 20 s ExitTimeOut, ...; the lifecycle table lists them).
    stop_timeout: float | None = None
    #: A liveness check (``procmgmt.readiness.Liveness``): a readiness check run
    #: every ``period`` seconds while the process runs; after ``failures`` failed
    #: probes in a row the process is killed so that its restart policy (which
    #: must be "on-failure" or "always") starts it again. None: none. No manager
    #: probes a process by itself: the generated files run a small watcher
    #: beside it (the liveness table in docs/backends.md says where).
    liveness: Any = None
    #: Where the object was created (file, line), for error messages.
    origin: tuple[str | None, int | None] = field(default=(None, None), compare=False)

    def __post_init__(self) -> None:
        if self.origin == (None, None):
            object.__setattr__(self, "origin", _caller_origin())

    # Identity semantics: a process is a node of the dependency graph.
    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    @property
    def effective_name(self) -> str | None:
        """``name``, else ``instance_name`` (the original's rule)."""
        return self.name if self.name is not None else self.instance_name

    @property
    def effective_daemon(self) -> str | None:
        """The daemon executable after applying the ``process`` shortcut."""
        return self.process if self.daemon is _UNSET else self.daemon

    @property
    def effective_foreground(self) -> str | None:
        """The foreground executable after applying the ``process`` shortcut."""
        return self.process if self.foreground_process is _UNSET else self.foreground_process

    @property
    def effective_daemon_args(self) -> list[str]:
        """Full daemon argument list."""
        if self.daemon_args is not None:
            return list(self.daemon_args)
        return [*self.args, *self.daemon_extra_args]

    @property
    def effective_foreground_args(self) -> list[str]:
        """Full foreground argument list."""
        if self.foreground_process_args is not None:
            return list(self.foreground_process_args)
        return [*self.args, *self.foreground_process_extra_args]


class Instance:
    """A process plus metadata other instances read (port, dns_name, webapps, ...).

    ``Instance(proc, port=5000, dns_name="webapp.local")``; metadata is read
    as attributes or with ``inst["port"]``. ``requires_unique_ids_for`` names
    the ID-assigner resources this instance needs IDs from.
    """

    def __init__(
        self,
        process: Process,
        *,
        requires_unique_ids_for: Sequence[str] = (),
        **metadata: Any,
    ) -> None:
        self.process = process
        self.requires_unique_ids_for = tuple(requires_unique_ids_for)
        self.metadata: dict[str, Any] = dict(metadata)
        self.origin = _caller_origin()

    def __getattr__(self, key: str) -> Any:
        metadata = self.__dict__.get("metadata", {})
        if key in metadata:
            return metadata[key]
        raise AttributeError(f"instance has no metadata {key!r}")

    def __getitem__(self, key: str) -> Any:
        return self.metadata[key]

    def get(self, key: str, default: Any = None) -> Any:
        """Metadata value or ``default``."""
        return self.metadata.get(key, default)

    def __repr__(self) -> str:
        return f"Instance({self.process.effective_name!r}, {self.metadata!r})"
