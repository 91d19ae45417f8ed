r"""cygrunsrv backend: Windows services for Cygwin programs.

Each process becomes ``cygrunsrv/<service>.json`` (and, when needed,
``bin/<name>-proxy``). The service name is ``$PROCMGMT_CYGRUNSRV_PREFIX``
(default ``procmgmt-``) + the process name.

The params file (its format and options) is :mod:`.params`, the ``--args``
encoding :mod:`.args`.

**Modes.** cygrunsrv supervises the program it starts (foreground). A
daemon-only process runs through the foreground proxy (wrap-daemon), and so
does a process with ``initialize``, ``umask`` or ``nice`` (cygrunsrv has no
options for them); ``directory`` is ``--chdir``, or the proxy's after
``initialize``. A process whose dependency declares a readiness check runs
through the proxy too: ``--dep`` makes the service control manager wait only
until the dependency *runs*, the proxy then waits until its check passes
(:mod:`procmgmt.backends.shared.ready`). cygrunsrv runs services as LocalSystem: a process ``user``
and ``credentials`` are not supported and produce build warnings (the
``--user``/``--passwd`` options need a Windows account and its password).

Activation is :mod:`.activator`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

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
from procmgmt.backends.cygrunsrv.activator import PREFIX_SETTING, SETTINGS, CygrunsrvActivator
from procmgmt.backends.cygrunsrv.args import arg_problem
from procmgmt.backends.cygrunsrv.params import (
    ENTRY,
    params_file,
    render_params,
    service_name,
)
from procmgmt.backends.shared import proxy as _proxy
from procmgmt.backends.shared import ready
from procmgmt.backends.shared.proxy import PROXY_KEY, proxy_file
from procmgmt.errors import Problem
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: Windows service names: no slashes; we keep to a portable set.
_SERVICE = re.compile(r"^[A-Za-z0-9._@-]{1,256}$")


def _uses_proxy(spec: ProcessSpec, ctx: BuildContext) -> bool:
    """Daemon-only, initialize, umask or nice (cygrunsrv has no options for them),
    or readiness needs it: a dependency declares a readiness check (the proxy
    waits until it passes: the service control manager waits only until it
    runs) or dependents check this process's log line or pid file."""
    return _proxy.uses_proxy(spec, ctx,
                             manager_lacks=spec.umask is not None or spec.nice is not None)


class CygrunsrvBackend(Backend):
    """cygrunsrv params files; dependencies are Windows service dependencies."""

    name = "cygrunsrv"
    own_settings = SETTINGS
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.NATIVE,
        ordering=Ordering.EDGES,
        ordering_detail="--dep: the service control manager starts dependencies first",
        user_switching=Support.WARNED,
        privileges=frozenset({Privilege.ROOT}),
        tested=Coverage.GENERATED,
        readiness=Support.EMULATED,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        # cygrunsrv has no restart option (--neverexits only makes an exit count as a
        # failure for Windows' recovery actions, which it does not set) and no kill
        # timeout: it sends --termsig and waits. Non-default values are refused.
        lifecycle=Lifecycle(default_restart="no"),
        notes="readiness: a dependent's proxy waits until dependencies that declare a "
              "check pass it (generated sh probes; Notify: only the engine waits); "
              "params checked against cygrunsrv's option rules and argument splitting; the "
              "activator runs against a fake cygrunsrv on Linux; services run as LocalSystem",
    )

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.prefix = str(PREFIX_SETTING.read(env))

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The native model: cygrunsrv option names as keys (``args`` a list,
        ``env`` a dict, ``deps`` a list, ``shutdown`` a bool), ``_proxy`` if needed."""
        settings = ctx.settings
        service = service_name(spec.name, self.prefix)
        user = spec.effective_user(settings)
        if user:
            ctx.warn(spec, self.name, f"user {user!r} is not supported: the service runs as "
                     "LocalSystem (cygrunsrv's --user needs a Windows account and password)")
        creds = spec.credentials
        if settings.privileged and (creds.users or creds.groups):
            ctx.warn(spec, self.name, "credentials (users/groups) are not supported: Cygwin "
                     "maps Windows accounts, create them on Windows")
        env = dict(spec.environment)
        path = spec.path_value()
        if path:
            # cygrunsrv appends :/bin itself.
            env["PATH"] = f"{path}:/usr/local/bin:/usr/bin"
        native: dict[str, Any] = {"service": service}
        if _uses_proxy(spec, ctx):
            wrap = spec.foreground is None
            exe = spec.daemon if wrap else spec.foreground
            assert exe is not None, "validation guarantees a daemon or a foreground process"
            args = spec.daemon_args if wrap else spec.foreground_args
            native["path"] = f"{ENTRY}/{proxy_file(spec.name)}"
            write_pid = _proxy.readiness_pid_file(spec, ctx)
            native[PROXY_KEY] = {
                "name": spec.name,
                "command": [exe, *args],
                "wrap_daemon": wrap,
                "pid_file": spec.derived_pid_file(settings) if wrap or write_pid else None,
                "pid_dir": spec.own_pid_dir(settings) if wrap or write_pid else None,
                "write_pid_file": write_pid,
                **_proxy.readiness_options(spec, ctx, settings, pid_waits=False),
                "initialize": spec.initialize,
                "directory": spec.directory,
                "umask": spec.umask,
                "nice": spec.nice,
                "pid_file_timeout": _proxy.DEFAULT_PID_FILE_TIMEOUT,
                "kill_after": _proxy.DEFAULT_KILL_AFTER,
                "stop_signal": spec.stop_signal,
            }
        else:
            assert spec.foreground is not None
            native["path"] = spec.foreground
            native["args"] = list(spec.foreground_args)
            if spec.directory:
                native["chdir"] = spec.directory
        log = spec.log_file(settings)
        native.update({
            "disp": service,
            "desc": spec.description,
            "type": "auto",
            "env": env,
            "deps": [service_name(d, self.prefix) for d in spec.dependencies],
            "termsig": spec.stop_signal,
            "stdout": log,
            "stderr": log,
            "shutdown": True,
        })
        return native

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The params file (JSON) and, for proxied processes, the proxy script."""
        service = str(native.get("service") or "")
        if not _SERVICE.match(service):
            raise ValueError(f"cygrunsrv service name {service!r} must be 1-256 letters, "
                             "digits and . _ @ -")
        proxy = native.get(PROXY_KEY)
        if proxy and ENTRY not in str(native.get("path")):
            raise ValueError("_proxy is set but path does not run it: set _proxy to None "
                             "to run your own path")
        doc = {"service": service, "params": render_params(native)}
        files = [File(params_file(service), json.dumps(doc, indent=2, ensure_ascii=False)
                      + "\n")]
        if proxy:
            opts = _proxy.options_from_native(proxy)
            files.append(File(proxy_file(spec.name), _proxy.generate(opts), mode=0o755))
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Service name and params file for the activator."""
        service = str(native.get("service"))
        return {"service": service, "params": params_file(service),
                "proxy": bool(native.get(PROXY_KEY)),
                "wraps_daemon": _proxy.wraps_daemon(native.get(PROXY_KEY))}

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Names cygrunsrv cannot install, arguments its splitter cannot pass,
        environment names with ``=``."""
        problems: list[tuple[str, str, str]] = []
        for spec in specs:
            service = service_name(spec.name, self.prefix)
            if not _SERVICE.match(service):
                problems.append((spec.name, "name", f"service name {service!r} may only "
                                 "contain letters, digits and . _ @ -"))
            if ctx.dependents(spec.name):
                problems += ready.spec_problems(spec)
            if not _uses_proxy(spec, ctx):
                for arg in spec.foreground_args:
                    problem = arg_problem(arg)
                    if problem:
                        problems.append((spec.name, "foreground_process_args",
                                         f"argument {arg!r} {problem}"))
            for key, value in spec.environment.items():
                if "=" in key or "\0" in key + value:
                    problems.append((spec.name, f"environment.{key}", "cygrunsrv --env "
                                     "cannot hold a name with '=' or a NUL character"))
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> CygrunsrvActivator:
        """Runs cygrunsrv (``PROCMGMT_CYGRUNSRV`` names the executable)."""
        return CygrunsrvActivator(settings)
