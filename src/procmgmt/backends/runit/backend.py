"""runit backend: one service directory per process, run by a runsvdir per profile.

**How the process is run.** runsv starts ``./run`` and restarts it when it
exits. ``run`` sends stderr into the log pipe, exports the environment and
executes ``chpst`` (a process group of its own, the nice level, the user:
``chpst -u`` sets the user's uid and primary gid and drops supplementary
groups), which executes the shared foreground proxy
(:mod:`procmgmt.backends.shared.proxy`) as ``./proxy``, for every process:

- **runit has no dependencies**, and runsvdir starts every service at once.
  The proxy waits until each dependency's pid file names a live process and,
  where it declares a readiness check, until the check passes, so order holds
  when runsvdir starts everything itself; during a switch procmgmt starts in
  dependency order anyway,
- it writes the pid file of a foreground process (``exec`` keeps the pid),
  which dependents wait for. Always, not only when there are dependents: a
  process whose dependents change keeps the same files and is not restarted,
- a daemon-only process runs in wrap-daemon mode, ``initialize`` runs as
  root before the proxy drops to the user, ``directory``/``umask`` apply after it.

**Readiness.** A checkable declaration (TCP, HTTP, PidFile, LogLine,
Command) becomes ``check``, one probe that ``sv -w SECS start`` repeats; the
engine checks readiness as for every backend. Notify cannot be probed from
sh: only the engine waits for it.

**Stopping.** ``control/d`` sends the process's stop signal to its process
group (runsv's default is SIGTERM to the pid only).

:mod:`.activator` deploys the directories into procmgmt's own runsvdir.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.base import (
    SH_READINESS,
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
from procmgmt.backends.runit import service
from procmgmt.backends.runit.activator import RunitActivator
from procmgmt.backends.shared import liveness, ready
from procmgmt.backends.shared import proxy as _proxy
from procmgmt.backends.shared.proxy import PROXY_KEY
from procmgmt.errors import Problem
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import Settings


def log_dir(spec: ProcessSpec, settings: Settings) -> str:
    """svlogd's directory: ``<log dir>/<name>``, its log file ``current``."""
    return os.path.join(settings.log_dir, spec.instance_name or spec.name)


class RunitBackend(Backend):
    """runit service directories; dependencies emulated by the proxy's wait."""

    name = "runit"
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.EMULATED,
        ordering=Ordering.WAITS,
        ordering_detail="run waits for dependency pid files (proxy)",
        user_switching=Support.NATIVE,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.RUN,
        readiness=Support.NATIVE,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.EVERY_PROCESS,
        # "no"/"on-failure": a generated ./finish tells runsv not to restart (finish.sh).
        lifecycle=Lifecycle(default_restart="always", restart_native=frozenset({"always"}),
                            restart_emulated=frozenset(service.FINISH_POLICIES),
                            default_stop_timeout=RunitActivator.stop_timeout,
                            stop_timeout=Support.EMULATED, liveness=Support.EMULATED),
        notes="service directories run by a runsvdir per profile; ./check from the "
              "readiness declaration (generated sh probe, sv -w waits for it); "
              "daemon-only processes and dependency waits run under the foreground proxy",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The run script's parameters (``chpst``: nice level, user) and the proxy's
        under ``_proxy``; an override may replace ``_proxy`` by ``command`` (a list),
        with ``directory`` and ``umask``, to exec a program without the proxy."""
        settings = ctx.settings
        user = spec.effective_user(settings)
        env = dict(spec.environment)
        path = spec.path_value()
        if path:
            env["PATH"] = f"{path}:{SYSTEM_PATH}"
        pid_file = spec.derived_pid_file(settings)
        wrap = spec.foreground is None
        exe = spec.daemon if wrap else spec.foreground
        assert exe is not None, "validation guarantees a daemon or a foreground process"
        args = spec.daemon_args if wrap else spec.foreground_args
        chainload = bool(spec.initialize.strip())
        options = _proxy.readiness_options(spec, ctx, settings, pid_waits=True)
        if isinstance(spec.readiness, rd.LogLine):
            options["record_log_offset"] = {
                spec.readiness.path: ready.log_offset_file(spec, settings)}
        rotation = settings.log_rotation()
        if rotation is not None and rotation[1] == 0:
            ctx.warn(spec, self.name, "svlogd cannot keep no rotated log at all (its n0 keeps "
                     "every one): it keeps 1")
        return {
            "environment": env,
            "nice": spec.nice,
            # With initialize, the proxy runs it as root and drops to the user itself.
            "user": None if chainload else user,
            # The proxy forwards the stop signal to a wrapped daemon: runsv sends TERM.
            "stop_signal": "TERM" if wrap else spec.stop_signal,
            PROXY_KEY: {
                "name": spec.name,
                "command": [exe, *args],
                "wrap_daemon": wrap,
                "pid_file": pid_file,
                # Only a proxy that starts as root can create it for the user.
                "pid_dir": spec.own_pid_dir(settings) if chainload or not user else None,
                "write_pid_file": not wrap,
                "initialize": spec.initialize,
                "directory": spec.directory,
                "umask": spec.umask,
                "user": user if chainload else None,
                "pid_file_timeout": _proxy.DEFAULT_PID_FILE_TIMEOUT,
                "kill_after": _proxy.kill_after(spec.stop_timeout),
                "stop_signal": spec.stop_signal,
                **options,
                # The proxy execs the program through the liveness wrapper (./liveness).
                "liveness": "liveness" if spec.liveness is not None else None,
            },
            "log_dir": log_dir(spec, settings),
            # --log-max-bytes/--log-backups as svlogd's config; None: svlogd's own
            # defaults (1,000,000 bytes, 10 old files).
            "log_rotation": None if rotation is None
            else {"max_bytes": rotation[0], "backups": max(1, rotation[1])},
            "check": spec.readiness.to_json() if spec.readiness is not None else None,
            "liveness": spec.liveness.to_json() if spec.liveness is not None else None,
            "pid_file": pid_file,
            "log_offset_file": ready.log_offset_file(spec, settings),
            "down": False,
            # None or "always": runsv restarts after every exit; "no", "on-failure": a
            # generated ./finish keeps it down (after exit status 0 for on-failure).
            "restart": spec.restart,
        }

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The service directory (:func:`.service.render`)."""
        return service.render(spec.name, native)

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Where the service directory and the log are, for the activator."""
        logs = str(native.get("log_dir") or log_dir(spec, ctx.settings))
        # runsv never sends SIGKILL itself: procmgmt's stop (k past it, as sv force-stop) does,
        # after the model's stop_timeout (written only when set).
        timeout = {} if spec.stop_timeout is None else {"stop_timeout": spec.stop_timeout}
        policy = native.get("restart")
        restart = {"restart": policy} if policy in service.FINISH_POLICIES else {}
        return {**timeout, **restart,
                "service": service.SERVICE_DIR,
                "log_dir": logs,
                "log_file": os.path.join(logs, "current"),
                "down": bool(native.get("down")),
                "proxy": bool(native.get(PROXY_KEY)),
                "wraps_daemon": _proxy.wraps_daemon(native.get(PROXY_KEY))}

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Readiness checks sh cannot express; NUL characters (nothing in a shell
        script can carry them)."""
        problems: list[tuple[str, str, str]] = []
        for spec in specs:
            problems += ready.spec_problems(spec)
            problems += liveness.spec_problems(spec)
            words = [*spec.environment.keys(), *spec.environment.values(),
                     spec.foreground or "", *spec.foreground_args, spec.daemon or "",
                     *spec.daemon_args, spec.directory or "", spec.initialize]
            if any("\0" in w for w in words):
                problems.append((spec.name, "environment", "contains a NUL character"))
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> RunitActivator:
        """A runsvdir per (state dir, profile), started on demand."""
        return RunitActivator(settings)
