"""launchd backend: one property list per process, loaded with ``launchctl``.

Each process becomes ``Library/LaunchDaemons/<label>.plist`` (privileged
builds: system daemons, run as root or as ``UserName``) or
``Library/LaunchAgents/<label>.plist`` (unprivileged builds: the deploying
user's agents). ``Label`` is ``$PROCMGMT_LAUNCHD_PREFIX`` (default
``org.procmgmt.``) + the process name.

**How the process is run.** launchd supervises the process it starts and
wants it in the foreground (launchd.plist(5): a job MUST NOT daemonize).
A foreground process runs directly from ``ProgramArguments`` with
``WorkingDirectory``, ``Umask`` (an integer) and ``UserName``. Everything
else goes through the foreground proxy (:mod:`procmgmt.backends.shared.proxy`):

- a daemon-only process (wrap-daemon mode: the proxy waits for its pid file
  and then for the daemon),
- a process with ``initialize``: the proxy runs it as root first and then
  drops to the user itself, so ``UserName`` is not written (chainloading);
  directory and umask are applied by the proxy after ``initialize``,
- a process with dependencies: **launchd has no dependencies** (at boot it
  starts every job at once). Instead of the original's warning, the proxy
  waits until each dependency's pid file names a live process before it
  runs anything, and then, for a dependency that declares a readiness
  check, until the check passes (generated sh probes, see
  :mod:`procmgmt.backends.shared.ready`; a Notify declaration counts as
  running only: sh cannot receive READY=1). So the order holds at boot too,
  not only during procmgmt's switch,
- a foreground process others depend on: the proxy writes its own pid
  (kept by ``exec``) into the pid file, so dependents have something to
  wait for.

The proxy is embedded in the plist as ``/bin/sh -c <script> <name>-proxy``:
plists are *copied* into the target directory (launchd wants real files
owned by root there), so the job must not refer to files next to the plist,
and a copied plist keeps working whichever generation's store entry is
garbage-collected later. ``Nice`` is always a plist key: launchd applies it
before switching to ``UserName``, so negative levels work for daemons.

``KeepAlive`` is ``{SuccessfulExit: false}`` unless the model's ``restart``
says otherwise (``no``: false, ``always``: true): launchd restarts a job that
failed (or a proxy that gave up waiting for a dependency, after launchd's
ThrottleInterval, ``restart_delay``) but not one that exited cleanly after a
stop. ``stop_timeout`` is ``ExitTimeOut`` (launchd's default: 20 s); launchd
has no restart limit, so ``restart_max`` is refused.

**Rendering.** The native model is the plist dictionary itself (every
launchd key is reachable through overrides, a dict deep-merge or a
callable); keys starting with ``_`` are procmgmt's (``_proxy``: the proxy's
parameters) and are never written. ``plistlib`` renders the types (bool,
integer, real, string, array, dict, date); a None anywhere is an error that
names the key (the original wrote an empty key), and the result must read
back equal (``plistlib`` turns ``\\r`` into ``\\n``, for instance) and pass
:mod:`procmgmt.backends.launchd.schema` (unknown keys: warnings; wrong types:
errors).

:mod:`.activator` copies the plists into place and drives ``launchctl``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt.backends.base import (
    ALL_RESTART_POLICIES,
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
from procmgmt.backends.launchd.activator import PREFIX_SETTING, SETTINGS, LaunchdActivator
from procmgmt.backends.launchd.plist import label_of, plist_path, render_plist
from procmgmt.backends.shared import proxy as _proxy
from procmgmt.backends.shared import ready
from procmgmt.backends.shared.proxy import PROXY_KEY
from procmgmt.errors import Problem
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import Settings

#: The shell the embedded proxy runs with.
PROXY_SHELL = "/bin/sh"
_LABEL = re.compile(r"^[A-Za-z0-9._-]+$")
#: ``Process.restart`` as ``KeepAlive``; on-failure is also a model without ``restart``.
KEEP_ALIVE: dict[str, bool | dict[str, bool]] = {
    "no": False, "on-failure": {"SuccessfulExit": False}, "always": True}


class LaunchdBackend(Backend):
    """launchd property lists; dependencies emulated by the proxy's wait."""

    name = "launchd"
    own_settings = SETTINGS
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.EMULATED,
        ordering=Ordering.WAITS,
        ordering_detail="proxy waits for dependency pid files",
        user_switching=Support.NATIVE,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.GENERATED,
        readiness=Support.EMULATED,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        lifecycle=Lifecycle(default_restart="on-failure", restart_native=ALL_RESTART_POLICIES,
                            restart_delay=Support.NATIVE, default_stop_timeout=20,
                            stop_timeout=Support.NATIVE),
        notes="plists checked with plistlib, xmllint and a launchd key schema; the proxy's "
              "dependency wait (running, then the dependency's declared readiness check "
              "as generated sh probes) runs for real on Linux; launchctl is not run here",
    )

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.prefix = str(PREFIX_SETTING.read(env))

    def uses_proxy(self, spec: ProcessSpec, ctx: BuildContext) -> bool:
        """Daemon-only, initialize, dependencies, or a dependency of others."""
        return _proxy.uses_proxy(spec, ctx, manager_lacks=bool(spec.dependencies)
                                 or bool(ctx.dependents(spec.name)))

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The job dictionary; the proxy's parameters (if any) under ``_proxy``."""
        settings = ctx.settings
        user = spec.effective_user(settings)
        label = label_of(spec.name, self.prefix)
        env = dict(spec.environment)
        path = spec.path_value()
        if path:
            env["PATH"] = f"{path}:{SYSTEM_PATH}"
        job: dict[str, Any] = {"Label": label}
        if self.uses_proxy(spec, ctx):
            wrap = spec.foreground is None
            exe = spec.daemon if wrap else spec.foreground
            assert exe is not None, "validation guarantees a daemon or a foreground process"
            args = spec.daemon_args if wrap else spec.foreground_args
            chainload = bool(spec.initialize.strip())
            job[PROXY_KEY] = {
                "name": spec.name,
                "command": [exe, *args],
                "wrap_daemon": wrap,
                "pid_file": spec.derived_pid_file(settings),
                # Only a proxy that starts as root can create it (launchd
                # runs the others as the user already).
                "pid_dir": spec.own_pid_dir(settings) if chainload or not user else None,
                "write_pid_file": not wrap,
                "initialize": spec.initialize,
                "directory": spec.directory,
                "umask": spec.umask,
                "user": user if chainload else None,
                "pid_file_timeout": _proxy.DEFAULT_PID_FILE_TIMEOUT,
                "kill_after": _proxy.kill_after(spec.stop_timeout),
                "stop_signal": spec.stop_signal,
                **_proxy.readiness_options(spec, ctx, settings, pid_waits=True),
            }
            if user and chainload:
                ctx.warn(spec, self.name, f"initialize runs as root, then the proxy drops to "
                         f"{user} with setpriv (util-linux), which macOS does not have: "
                         "override _proxy.user and UserName if the drop must happen there")
            elif user:
                job["UserName"] = user
        else:
            assert spec.foreground is not None
            job["ProgramArguments"] = [spec.foreground, *spec.foreground_args]
            if spec.directory:
                job["WorkingDirectory"] = spec.directory
            if spec.umask:
                job["Umask"] = int(spec.umask, 8)
            if user:
                job["UserName"] = user
        if env:
            job["EnvironmentVariables"] = env
        if spec.nice is not None:
            job["Nice"] = spec.nice
        if spec.stop_signal != "TERM" and spec.foreground is not None:
            # Only a wrapped daemon's proxy can translate: a foreground program is exec'd.
            ctx.warn(spec, self.name, f"launchd stops a job with SIGTERM and has no key for "
                     f"another signal: SIG{spec.stop_signal} (stop_signal) is not sent")
        log = spec.log_file(settings)
        job.update({
            "RunAtLoad": True,
            "KeepAlive": KEEP_ALIVE[spec.restart or "on-failure"],
            "StandardOutPath": log,
            "StandardErrorPath": log,
        })
        # launchd reads whole seconds; rounded up, never below the model's value.
        if spec.restart_delay is not None:
            job["ThrottleInterval"] = math.ceil(spec.restart_delay)
        if spec.stop_timeout is not None:
            job["ExitTimeOut"] = math.ceil(spec.stop_timeout)
        return job

    def job_of(self, native: Mapping[str, Any]) -> dict[str, Any]:
        """The plist dictionary: private keys dropped, the proxy embedded."""
        job = {k: v for k, v in native.items() if not str(k).startswith("_")}
        proxy = native.get(PROXY_KEY)
        if proxy:
            if "ProgramArguments" in job or "Program" in job:
                raise ValueError("both _proxy and ProgramArguments/Program are set: set "
                                 "_proxy to None to replace the proxy by your own command")
            opts = _proxy.options_from_native(proxy)
            job["ProgramArguments"] = [PROXY_SHELL, "-c", _proxy.generate(opts),
                                       f"{opts.name}-proxy"]
        return job

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The plist, after the None/type/round-trip checks (warnings are recorded)."""
        job = self.job_of(native)
        text, warnings = render_plist(job)
        for w in warnings:
            ctx.warn(spec, self.name, w)
        label = str(job.get("Label", ""))
        if not _LABEL.match(label):
            raise ValueError(f"launchd label {label!r} must be letters, digits and . _ - "
                             "(it names the plist file and the launchctl service target)")
        return [File(plist_path(label, ctx.settings.privileged), text)]

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Label and plist location for the activator."""
        label = str(native.get("Label"))
        extra: dict[str, Any] = {"label": label,
                                 "plist": plist_path(label, ctx.settings.privileged),
                                 "proxy": bool(native.get(PROXY_KEY)),
                                 "wraps_daemon": _proxy.wraps_daemon(native.get(PROXY_KEY))}
        if isinstance(native.get("StandardOutPath"), str):
            # procmgmt creates it first, without following a symlink (launchd would).
            extra["log_file"] = native["StandardOutPath"]
        return extra

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Labels must be file-name and service-target safe; plist strings must be
        XML text (no control characters but tab and newline, no carriage return);
        a dependency's readiness check must be expressible in sh."""
        problems: list[tuple[str, str, str]] = []
        for spec in specs:
            if ctx.dependents(spec.name):
                problems += ready.spec_problems(spec)
            label = label_of(spec.name, self.prefix)
            if not _LABEL.match(label):
                problems.append((spec.name, "name", f"launchd label {label!r} may only "
                                 "contain letters, digits and . _ -"))
            values = [("environment", v) for v in spec.environment.values()]
            values += [("foreground_process_args", a) for a in
                       (spec.foreground or "", *spec.foreground_args)]
            values += [("daemon_args", a) for a in (spec.daemon or "", *spec.daemon_args)]
            values += [("initialize", spec.initialize), ("directory", spec.directory or ""),
                       ("pid_file", spec.derived_pid_file(ctx.settings))]
            for fieldname, value in values:
                bad = [c for c in value if (ord(c) < 32 and c not in "\t\n") or c == "\x7f"]
                if bad:
                    problems.append((spec.name, fieldname,
                                     f"{value!r} contains {bad[0]!r}, which an XML plist "
                                     "cannot hold"))
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> LaunchdActivator:
        """launchctl-driven activation (macOS; on Linux only with an injected runner)."""
        return LaunchdActivator(settings)
