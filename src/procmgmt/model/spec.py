"""Normalized process specs: what every backend translator receives.

A :class:`ProcessSpec` is a :class:`~procmgmt.model.process.Process` after
the shortcuts are resolved (``process``/``args`` into daemon and foreground
command lines), dependencies reduced to names, the umask normalized, and the
overrides reduced to the selected backend. It is plain data, so it can be
written as JSON (``build -P none``) and read back (late translation).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from procmgmt.model.credentials import Credentials
from procmgmt.model.process import Override, Process
from procmgmt.settings import Settings

#: The search path appended after a process's own ``path`` entries, and the
#: one a generated script falls back to when it inherits no PATH at all (a
#: boot-time init, launchd, cygrunsrv). One value for every backend so a
#: program is found the same way whatever manager starts it.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ProcessSpec:
    """One process as translators see it."""

    name: str
    description: str
    initialize: str = ""
    daemon: str | None = None
    daemon_args: tuple[str, ...] = ()
    foreground: str | None = None
    foreground_args: tuple[str, ...] = ()
    instance_name: str | None = None
    pid_file: str | None = None
    pid_file_program: str | None = None
    path: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    directory: str | None = None
    umask: str | None = None
    nice: int | None = None
    user: str | None = None
    dependencies: tuple[str, ...] = ()
    credentials: Credentials = field(default_factory=Credentials)
    overrides: Mapping[str, Override] = field(default_factory=dict)
    readiness: Any = None
    #: Signal name without ``SIG`` that asks the process to stop.
    stop_signal: str = "TERM"
    #: Signal name without ``SIG`` that asks the process to reload; None: none declared.
    reload_signal: str | None = None
    #: Restart policy ("no", "on-failure", "always"); None: the backend's default.
    restart: str | None = None
    #: Seconds before a restart; None: the backend's default.
    restart_delay: float | None = None
    #: Restarts allowed within ``RESTART_WINDOW`` seconds; None: no limit of ours.
    restart_max: int | None = None
    #: Seconds from the stop signal to SIGKILL; None: the backend's default.
    stop_timeout: float | None = None
    #: The liveness check (``procmgmt.readiness.Liveness``); None: none.
    liveness: Any = None
    #: Start rank: 0 without dependencies, else 1 + the highest rank of the dependencies.
    rank: int = 0

    def override_for(self, backend: str) -> Override | None:
        """The override entry for ``backend``, if any."""
        return self.overrides.get(backend)

    def effective_user(self, settings: Settings) -> str | None:
        """The user to switch to, or None when user changes are disabled."""
        return None if settings.force_disable_user_change else self.user

    def pid_dir(self, settings: Settings) -> str:
        """Runtime dir, or the process's own directory (:meth:`Settings.pid_dir`)
        for processes that (would) switch user.

        Based on the raw ``user`` so paths are the same in privileged and
        unprivileged builds, as in the original.
        """
        if self.user:
            return settings.pid_dir(self.instance_name or self.name)
        return settings.runtime_dir

    def derived_pid_file(self, settings: Settings) -> str:
        """The explicit pid file, else ``<pid dir>/<instance name or name>.pid``."""
        if self.pid_file:
            return self.pid_file
        return os.path.join(self.pid_dir(settings), f"{self.instance_name or self.name}.pid")

    def own_pid_dir(self, settings: Settings) -> str | None:
        """The process's own pid directory (to create before it starts), or None
        when its pid file lives elsewhere (the runtime dir, an explicit path)."""
        directory = os.path.dirname(self.derived_pid_file(settings))
        return directory if os.path.dirname(directory) == settings.pid_parent_dir else None

    def log_file(self, settings: Settings, *, opened_as_user: bool = False) -> str:
        """Where a process's captured output goes: the log dir, which only root
        (or the deploying user) can write. A supervisor running as root opens
        the log again at every spawn, so it must never be in a directory the
        service user can write (a symlink there would send the service's output
        into any file). Only where the log is opened *as* the service user
        (``opened_as_user``: BSD rc's daemon(8) runs as that user) does a
        process that switches user keep it in its own pid directory."""
        key = self.instance_name or self.name
        base = (settings.pid_dir(key) if opened_as_user and self.effective_user(settings)
                else settings.log_dir)
        return os.path.join(base, f"{self.instance_name or self.name}.log")

    def path_value(self) -> str | None:
        """PATH entries of ``path``: an entry with a ``bin`` subdir contributes it."""
        if not self.path:
            return None
        entries = []
        for p in self.path:
            binp = os.path.join(p, "bin")
            entries.append(binp if os.path.isdir(binp) else p)
        return ":".join(entries)


def normalize_umask(value: int | str | None) -> str | None:
    """0o022 or "022" -> "0022"; None stays None (validation checks the range)."""
    if value is None:
        return None
    number = value if isinstance(value, int) else int(str(value), 8)
    return f"{number:04o}"


def normalize_signal(value: str | None) -> str | None:
    """"SIGINT", "sigint" or "INT" -> "INT"; None stays None (validation checks the name)."""
    if value is None:
        return None
    name = str(value).upper()
    return name[3:] if name.startswith("SIG") else name


def to_spec(proc: Process, names: Mapping[int, str], rank: int) -> ProcessSpec:
    """Normalize a validated process; ``names`` maps id(process) -> its name."""
    name = proc.effective_name
    assert name is not None, "validation guarantees a name"
    return ProcessSpec(
        name=name,
        description=proc.description or name,
        initialize=proc.initialize or "",
        daemon=proc.effective_daemon,
        daemon_args=tuple(str(a) for a in proc.effective_daemon_args),
        foreground=proc.effective_foreground,
        foreground_args=tuple(str(a) for a in proc.effective_foreground_args),
        instance_name=proc.instance_name,
        pid_file=proc.pid_file,
        pid_file_program=proc.pid_file_program,
        path=tuple(proc.path),
        environment={str(k): str(v) for k, v in dict(proc.environment).items()},
        directory=proc.directory,
        umask=normalize_umask(proc.umask),
        nice=proc.nice,
        user=proc.user,
        dependencies=tuple(names[id(d)] for d in proc.dependencies),
        credentials=proc.credentials,
        overrides=dict(proc.overrides),
        readiness=proc.readiness,
        stop_signal=normalize_signal(proc.stop_signal) or "TERM",
        reload_signal=normalize_signal(proc.reload_signal),
        restart=proc.restart,
        restart_delay=proc.restart_delay,
        restart_max=proc.restart_max,
        stop_timeout=proc.stop_timeout,
        liveness=proc.liveness,
        rank=rank,
    )
