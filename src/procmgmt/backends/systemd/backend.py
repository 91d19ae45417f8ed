"""systemd backend: one ``.service`` unit per process, deployed into a real systemd.

Native model
    ``{"Unit": {...}, "Service": {...}, "Install": {...}}``. Every key of a
    section becomes a ``Key=value`` line, so any systemd directive is
    reachable through ``overrides={"systemd": {...}}`` (deep-merged; ``None``
    deletes a key) or a function. Values are *systemd text*, written as
    they are: ``ExecStart`` is a quoted command line (build one with
    :func:`exec_line`), ``%`` in a value is a specifier (write ``%%``).
    A list renders as repeated keys (``ExecStartPre``, ``After``...); ``True``
    and ``False`` render as ``yes``/``no``; ``None`` is left out. Only
    ``Environment`` may be a dict (name -> plain value): each variable
    becomes one ``Environment=`` line quoted by :func:`environment_assignment`,
    and a dict override adds or (with ``None``) removes single variables.

Generated unit
    ``Type=simple`` with the foreground command when the process has one
    (the original's preference), otherwise ``Type=forking`` with
    ``PIDFile=`` and the daemon command. ``initialize`` becomes a POSIX sh
    script ``bin/<name>-prestart`` in the same store entry, run by
    ``ExecStartPre=/bin/sh %Y/../../../bin/<name>-prestart``; ``%Y`` is the
    directory of the unit file, and for a *linked* unit (a symlink into the
    unit search path, which is how the activator installs units) systemd
    resolves it to the real file in the store. The executable is ``/bin/sh``
    because systemd refuses executable paths containing ``..``. The line
    gets the ``+`` prefix when the process runs as another user, so
    initialize runs as root as in the original. ``Wants=`` and ``After=``
    name the dependencies' units; no ``.wants/`` directory of symlinks is
    generated: a ``Wants=`` in the unit itself is what systemd reads, while
    ``.wants/`` links exist to add dependencies to units one does not own
    (``systemctl enable``) and would be a second copy of the same fact for
    the activator to install and remove.

Readiness (native)
    A ``Notify`` declaration of a foreground process becomes ``Type=notify``
    with ``NotifyAccess=main`` and ``TimeoutStartSec=`` its timeout: systemd
    sets ``NOTIFY_SOCKET`` itself, so procmgmt's own socket variable is left
    out, and the engine does not probe (``systemctl start`` returns once
    READY=1 arrived). Any other declaration becomes a generated POSIX sh wait
    ``bin/<name>-ready`` run by ``ExecStartPost=`` (a LogLine check also
    records the log size in ``ExecStartPre=`` ``bin/<name>-ready --mark``):
    the unit stays "activating" until the check passes, so ``After=``
    dependents start only when it is ready, at boot as during a switch, and
    a check that times out fails the start (systemd stops the process).
    ``TimeoutStartSec=`` is raised when the check may take longer than
    systemd's 90 s default. A ``Notify`` declaration of a daemon-only process
    cannot be expressed (``Type=notify`` needs the main process in the
    foreground): only the engine waits for it, during a switch.

The backend's own settings, environment variables declared in
:mod:`.naming` (``own_settings``: listed by ``--help`` and docs/backends.md):

``PROCMGMT_SYSTEMD_PREFIX``
    unit name prefix, default ``procmgmt-`` (unit ``procmgmt-<name>.service``).
``PROCMGMT_SYSTEMD_USER``
    ``1`` targets the user's own manager (``systemctl --user``): units are
    wanted by ``default.target`` and carry no ``User=``/``Group=``.
    Default ``0``, also for non-root callers: the choice changes the
    generated files, so it is never guessed from who runs procmgmt.
``PROCMGMT_SYSTEMD_TARGET_DIR``
    where the activator links the units: default ``/etc/systemd/system``,
    or ``$XDG_CONFIG_HOME/systemd/user`` (``~/.config/systemd/user``) in
    user mode.

The files are encoded by :mod:`.unit` and checked against the directives
systemd knows (:mod:`.directives`); :mod:`.activator` installs them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.base import (
    ALL_RESTART_POLICIES,
    SH_READINESS,
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    Coverage,
    File,
    Lifecycle,
    Ordering,
    PidFiles,
    Privilege,
    ProcessMode,
    Support,
)
from procmgmt.backends.shared import liveness, ready
from procmgmt.backends.shared.liveness import liveness_file
from procmgmt.backends.systemd.activator import SystemdActivator
from procmgmt.backends.systemd.directives import directive_problems
from procmgmt.backends.systemd.naming import (
    SETTINGS,
    UNIT_DIR,
    UNIT_NAME,
    unit_name,
    unit_prefix,
    user_mode,
)
from procmgmt.backends.systemd.unit import (
    c_escape,
    environment_problem,
    exec_line,
    exec_word,
    path_problem,
    render_unit,
    specifier_escape,
)
from procmgmt.errors import Problem
from procmgmt.model.process import RESTART_WINDOW
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.numbers import format_seconds
from procmgmt.settings import Settings

#: systemd's DefaultTimeoutStartSec=: a readiness wait that may take longer raises it.
DEFAULT_START_TIMEOUT = 90


def render_prestart(name: str, initialize: str) -> str:
    """The POSIX sh script ExecStartPre= runs (``set -e``: a failing step fails the start)."""
    return (
        "#!/bin/sh\n"
        f"# initialize of {' '.join(name.split())}, run by systemd before the process starts\n"
        "# (as root when the process runs as another user).\n"
        "set -e\n"
        f"{initialize.strip(chr(10))}\n"
    )


def _resolve_executable(exe: str, spec: ProcessSpec, ctx: BuildContext) -> str:
    """A bare executable name found in ``path`` becomes absolute: systemd looks
    bare names up in its own fixed directories, not in Environment=PATH."""
    if "/" in exe:
        return exe
    for d in (spec.path_value() or "").split(":"):
        candidate = os.path.join(d, exe)
        if d and ctx.is_executable(candidate):
            return candidate
    return exe


def _lifecycle(spec: ProcessSpec, unit: dict[str, Any], service: dict[str, Any]) -> None:
    """Restart policy and stop timeout, only where the model sets them (the unit
    of a model that does not stays as before: systemd's Restart=no and
    DefaultTimeoutStopSec). ``restart_max`` counts restarts, StartLimitBurst=
    starts: the first start is one more."""
    if spec.restart is not None:
        service["Restart"] = spec.restart
    if spec.restart_delay is not None:
        service["RestartSec"] = format_seconds(spec.restart_delay)
    if spec.restart_max is not None:
        unit["StartLimitIntervalSec"] = RESTART_WINDOW
        unit["StartLimitBurst"] = spec.restart_max + 1
    if spec.stop_timeout is not None:
        service["TimeoutStopSec"] = format_seconds(spec.stop_timeout)


class SystemdBackend(Backend):
    """One ``<prefix><name>.service`` unit per process."""

    name = "systemd"
    own_settings = SETTINGS
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.NATIVE,
        ordering=Ordering.EDGES,
        ordering_detail="Wants= + After=",
        user_switching=Support.NATIVE,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.CONTAINER,
        readiness=Support.NATIVE,
        readiness_kinds=SH_READINESS | {"notify"},
        pid_files=PidFiles.DAEMONS,
        lifecycle=Lifecycle(default_restart="no", restart_native=ALL_RESTART_POLICIES,
                            restart_delay=Support.NATIVE, restart_max=Support.NATIVE,
                            default_stop_timeout=90, stop_timeout=Support.NATIVE,
                            liveness=Support.EMULATED),
        notes="readiness: Notify is Type=notify (foreground processes), other checks a "
              "generated sh wait in ExecStartPost=, so After= dependents start when ready; "
              "real systemd inside systemd-nspawn; user mode with systemctl --user "
              "(PROCMGMT_SYSTEMD_USER=1)",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """Unit, Service and Install sections, values already in systemd syntax."""
        settings = ctx.settings
        prefix = unit_prefix()
        user_manager = user_mode()
        user = None if user_manager else spec.effective_user(settings)
        if user_manager and spec.effective_user(settings):
            ctx.warn(spec, self.name, f"user {spec.user!r} ignored: a user manager "
                                      "cannot switch users")
        deps = [unit_name(d, prefix) for d in spec.dependencies]
        # One line; a trailing backslash would continue it, so it is dropped.
        description = " ".join(spec.description.split()).rstrip(" \\")
        unit: dict[str, Any] = {"Description": specifier_escape(description)}
        if deps:
            unit["Wants"] = deps
            unit["After"] = list(deps)
        service: dict[str, Any] = {}
        if spec.foreground:
            service["Type"] = "simple"
            exe, args = spec.foreground, spec.foreground_args
        elif spec.daemon:
            service["Type"] = "forking"
            service["PIDFile"] = specifier_escape(spec.derived_pid_file(settings))
            exe, args = spec.daemon, spec.daemon_args
        else:
            raise ValueError(f"{spec.name}: neither a daemon nor a foreground process to run")
        if spec.initialize.strip():
            service["ExecStartPre"] = [self._store_script(self.prestart_path(spec), user)]
        check = spec.readiness
        notify = isinstance(check, rd.Notify) and bool(spec.foreground)
        if notify:
            service["Type"] = "notify"
            service["NotifyAccess"] = "main"
            service["TimeoutStartSec"] = max(1, math.ceil(float(check.timeout)))
        elif ready.checkable(check):
            if isinstance(check, rd.LogLine):
                service.setdefault("ExecStartPre", []).append(
                    self._store_script(self.ready_path(spec), user, "--mark"))
            service["ExecStartPost"] = [self._store_script(self.ready_path(spec), user)]
            wanted = math.ceil(float(check.timeout)) + 30
            if wanted > DEFAULT_START_TIMEOUT:
                service["TimeoutStartSec"] = wanted
        service["ExecStart"] = exec_line([_resolve_executable(exe, spec, ctx), *args])
        if spec.liveness is not None:
            # The wrapper starts the watcher and execs the program: the main pid stays.
            service["ExecStart"] = (self._store_script(liveness_file(spec.name), None)
                                    + " " + service["ExecStart"])
        environment = dict(spec.environment)
        if notify and environment.get("NOTIFY_SOCKET") == rd.notify_socket_path(
                settings.runtime_dir, spec.name):
            # systemd gives the process its own NOTIFY_SOCKET.
            del environment["NOTIFY_SOCKET"]
        path = spec.path_value()
        if path:
            environment["PATH"] = f"{path}:{SYSTEM_PATH}"
        if environment:
            service["Environment"] = environment
        if spec.directory:
            service["WorkingDirectory"] = specifier_escape(spec.directory)
        if spec.umask:
            service["UMask"] = spec.umask
        if spec.nice is not None:
            service["Nice"] = spec.nice
        if user:
            service["User"] = user
            account = spec.credentials.users.get(user)
            if account is not None and account.group:
                service["Group"] = account.group
        service["KillMode"] = "control-group"
        if spec.stop_signal != "TERM":
            service["KillSignal"] = f"SIG{spec.stop_signal}"
        if spec.reload_signal:
            # systemctl reload (procmgmt reload) signals the main process.
            service["ExecReload"] = f"/bin/kill -s {spec.reload_signal} $MAINPID"
        _lifecycle(spec, unit, service)
        return {
            "Unit": unit,
            "Service": service,
            "Install": {"WantedBy": "default.target" if user_manager else "multi-user.target"},
        }

    @staticmethod
    def prestart_path(spec: ProcessSpec) -> str:
        """Store-relative path of the initialize script."""
        return f"bin/{spec.name}-prestart"

    @staticmethod
    def ready_path(spec: ProcessSpec) -> str:
        """Store-relative path of the readiness wait script."""
        return f"bin/{spec.name}-ready"

    @staticmethod
    def _store_script(rel: str, user: str | None, *args: str) -> str:
        """An Exec*= line running a script of this store entry with /bin/sh
        (``+``: as root, when the process runs as another user, like initialize).
        ``%Y`` is the unit file's directory; exec_word would make it a literal
        "%Y", so the path is quoted by hand."""
        return (("+" if user else "") + "/bin/sh " + '"' + c_escape(f"%Y/../../../{rel}") + '"'
                + "".join(" " + exec_word(a) for a in args))

    @staticmethod
    def _waits(spec: ProcessSpec) -> bool:
        """True when the unit gets the generated readiness wait (not Type=notify)."""
        return ready.checkable(spec.readiness) and not (
            isinstance(spec.readiness, rd.Notify) and bool(spec.foreground))

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The unit file, plus the prestart script when there is an initialize."""
        name = unit_name(spec.name)
        if not UNIT_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid unit name")
        unknown = directive_problems(native)
        if unknown:
            raise ValueError("; ".join(message for _, message in unknown))
        files = [File(f"{UNIT_DIR}/{name}", render_unit(native))]
        if spec.initialize.strip():
            files.append(File(self.prestart_path(spec),
                              render_prestart(spec.name, spec.initialize), mode=0o755))
        live = spec.liveness
        if live is not None:
            files.append(File(liveness_file(spec.name), liveness.wrapper(
                spec.name, live, pid_file=spec.derived_pid_file(ctx.settings)), mode=0o755))
        if self._waits(spec):
            files.append(File(self.ready_path(spec), ready.ready_script(
                spec.name, spec.readiness, pid_file=spec.derived_pid_file(ctx.settings),
                offset_file=ready.log_offset_file(spec, ctx.settings)), mode=0o755))
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Unit name, unit file and prestart script (store-relative), user mode."""
        name = unit_name(spec.name)
        return {
            "unit": name,
            "unit_file": f"{UNIT_DIR}/{name}",
            "prestart": self.prestart_path(spec) if spec.initialize.strip() else None,
            "user_mode": user_mode(),
            # systemctl start returns once systemd saw READY=1 (Type=notify): the
            # engine's own notification socket would never hear from the process.
            **({"readiness_native": True}
               if (native.get("Service") or {}).get("Type") == "notify"
               and isinstance(spec.readiness, rd.Notify) else {}),
        }

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Values a unit file cannot carry: control characters in Environment=,
        relative paths, a store path the prestart line cannot quote."""
        problems: list[tuple[str, str, str]] = []
        prefix = unit_prefix()
        for spec in specs:
            override = spec.override_for(self.name)
            if isinstance(override, Mapping):
                # A function override is checked when it has run (render).
                problems += [(spec.name, f"overrides.systemd.{where}", message)
                             for where, message in directive_problems(override)]
            for key, value in sorted(spec.environment.items()):
                why = environment_problem(value)
                if why:
                    problems.append((spec.name, f"environment.{key}", f"value {why}"))
            if not UNIT_NAME.fullmatch(unit_name(spec.name, prefix)):
                problems.append((spec.name, "name",
                                 f"{unit_name(spec.name, prefix)!r} is not a valid unit name"))
            for fieldname, path in (("directory", spec.directory),
                                    ("pid_file", spec.pid_file)):
                if path and not path.startswith("/"):
                    problems.append((spec.name, fieldname,
                                     f"systemd needs an absolute path, got {path!r}"))
                elif path:
                    why = path_problem(path)
                    if why:
                        problems.append((spec.name, fieldname, f"{path!r} {why}"))
            exe = spec.foreground or spec.daemon
            if exe and "/" in exe and not exe.startswith("/"):
                problems.append((spec.name, "process",
                                 f"systemd needs an absolute path or a bare name, got {exe!r}"))
            problems += ready.spec_problems(spec) if self._waits(spec) else []
            problems += liveness.spec_problems(spec)
            # %Y expands to the store path before the line is split into words.
            if (spec.initialize.strip() or self._waits(spec) or spec.liveness is not None) \
                    and re.search(r'["\\$%\x00-\x1f]', ctx.settings.store_dir):
                problems.append((spec.name,
                                 "initialize" if spec.initialize.strip() else
                                 "readiness" if self._waits(spec) else "liveness",
                                 f"the store dir {ctx.settings.store_dir!r} contains a quote, "
                                 "backslash, $, % or control character, which the "
                                 "ExecStartPre=/ExecStartPost=/ExecStart= line cannot "
                                 "carry"))
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> Activator:
        """Links units into the target dir and drives ``systemctl``."""
        return SystemdActivator(settings)
