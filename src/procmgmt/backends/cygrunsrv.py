r"""cygrunsrv backend: Windows services for Cygwin programs.

Each process becomes ``cygrunsrv/<service>.json`` (and, when needed,
``bin/<name>-proxy``). The service name is ``$PROCMGMT_CYGRUNSRV_PREFIX``
(default ``procmgmt-``) + the process name.

**The params file** is JSON, not the original's one-argument-per-line text:
``{"service": NAME, "params": [ARG, ...]}``, where ``params`` are exactly the
arguments that follow ``cygrunsrv --install NAME``. One argument per line
cannot hold an argument with a line break (an environment value, a path),
JSON holds anything. The only placeholder is ``@ENTRY@``: the directory the
files were generated into (the store entry). It appears only in the proxy's
``--path``, because the store path is a hash of the very files that would
have to contain it; the activator substitutes it, and users of ``procmgmt
generate`` replace it with the directory they install the files to.

Params, in this order: ``--path`` (the program, or the proxy), ``--args``,
``--chdir``, ``--disp``, ``--desc``, ``--type`` (``auto``/``manual``), one
``--env NAME=VALUE`` per variable (sorted), one ``--dep <service>`` per
dependency (the Windows service control manager starts them first and
refuses to stop a service others need), ``--termsig`` (only when not TERM,
cygrunsrv's default), ``--stdout``/``--stderr`` (the log file; cygrunsrv's
default is /var/log/<service>.log) and ``--shutdown`` (stop the service at
system shutdown).

**How ``--args`` is split.** cygrunsrv stores ``--args`` as one registry
string and, when the service starts, splits it with its own
``eval_arglist`` (cygrunsrv.cc), *not* with the Windows command-line rules
(``CommandLineToArgvW``) nor a shell: arguments are separated by spaces
(only ``' '``: a tab or newline is an ordinary character); an argument that
*starts* with ``"`` or ``'`` runs to the next same quote character (or the
end of the string) and the quotes are dropped; any other argument runs to
the next space. There are no escapes, and a quote inside an unquoted
argument is literal. An empty ``--args`` means no arguments. So an argument
is written bare when it is non-empty, has no space and does not start with
a quote; else in ``"..."`` when it contains no ``"``; else in ``'...'`` when
it contains no ``'``. An argument that needs quoting and contains both quote
characters cannot be passed (:func:`quote_arg` raises; :meth:`validate`
reports it): such a process can be run through the proxy by an override.
:func:`split_args` is that rule as a parser, used by the property tests.

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

**Activation** (:class:`CygrunsrvActivator`) really runs ``cygrunsrv``
(the original only echoed the install command): start is ``--query`` (is it
installed?), ``--install NAME <params>`` (with ``@ENTRY@`` replaced),
``--start NAME`` (cygrunsrv waits until the service runs) and ``--query``
again for the status; a service found installed but stopped is
``--remove``\ d first so the new params count. Stop is ``--stop`` then
``--remove``. The engine calls them in dependency order.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt.backends._activation import (
    CommandResult,
    Runner,
    pid_verdict,
    subprocess_runner,
)
from procmgmt.backends.base import (
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    DeployedProcess,
    File,
    Generation,
    ProcessStatus,
    Tool,
)
from procmgmt.backends.shared import proxy as _proxy
from procmgmt.backends.shared import ready as _ready_sh
from procmgmt.backends.shared.proxy import PROXY_KEY, proxy_file
from procmgmt.errors import DeployError
from procmgmt.model.spec import ProcessSpec, dependents_of
from procmgmt.settings import Settings

DEFAULT_PREFIX = "procmgmt-"
#: Replaced by the store entry's path when the service is installed.
ENTRY = "@ENTRY@"
CYGRUNSRV = "cygrunsrv"
DEFAULT_TERMSIG = "TERM"
#: Windows service names: no slashes; we keep to a portable set.
_SERVICE = re.compile(r"^[A-Za-z0-9._@-]{1,256}$")
_SIGNAL = re.compile(r"^(?:[A-Z][A-Z0-9]*|[0-9]+)$")


# --- --args quoting ------------------------------------------------------------------


def arg_problem(arg: str) -> str | None:
    """Why ``arg`` cannot be one word of ``--args``, or None."""
    if "\0" in arg:
        return "contains a NUL character"
    if arg and " " not in arg and arg[0] not in "'\"":
        return None
    if '"' in arg and "'" in arg:
        return ("needs quoting (a space, an empty word or a leading quote) and contains both "
                "' and \", which cygrunsrv's argument splitting cannot represent together")
    return None


def quote_arg(arg: str) -> str:
    """One word of ``--args`` that cygrunsrv's splitter gives back as ``arg``."""
    problem = arg_problem(arg)
    if problem:
        raise ValueError(f"cygrunsrv argument {arg!r} {problem}")
    if arg and " " not in arg and arg[0] not in "'\"":
        return arg
    return f'"{arg}"' if '"' not in arg else f"'{arg}'"


def join_args(argv: Sequence[str]) -> str:
    """The ``--args`` string for ``argv``."""
    return " ".join(quote_arg(a) for a in argv)


def split_args(text: str) -> list[str]:
    """cygrunsrv's splitting of ``--args`` (eval_arglist), as documented above."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        stop = " "
        if text[i] in "'\"":
            stop = text[i]
            i += 1
        j = text.find(stop, i)
        if j < 0:
            j = n
        out.append(text[i:j])
        i = j + 1
    return out


# --- backend -------------------------------------------------------------------------


def service_name(name: str, prefix: str) -> str:
    """The Windows service name of process ``name``."""
    return f"{prefix}{name}"


def params_file(service: str) -> str:
    """Where the params live in the store entry."""
    return f"cygrunsrv/{service}.json"


def _dependents(spec: ProcessSpec, specs: Mapping[str, ProcessSpec]) -> list[str]:
    return dependents_of(specs, spec.name)


def _uses_proxy(spec: ProcessSpec, specs: Mapping[str, ProcessSpec]) -> bool:
    """Daemon-only, initialize, umask or nice (cygrunsrv has no options for them),
    or readiness needs it: a dependency declares a readiness check (the proxy
    waits until it passes: the service control manager waits only until it
    runs) or dependents check this process's log line or pid file."""
    return _proxy.uses_proxy(spec, specs,
                             manager_lacks=spec.umask is not None or spec.nice is not None)


def render_params(native: Mapping[str, Any]) -> list[str]:
    """The arguments after ``cygrunsrv --install NAME``, from a native model."""
    def text(key: str) -> str:
        value = native[key]
        if not isinstance(value, str):
            raise ValueError(f"cygrunsrv {key} must be a string, not {type(value).__name__}")
        if "\0" in value:
            raise ValueError(f"cygrunsrv {key} contains a NUL character")
        return value

    params = ["--path", text("path")]
    args = native.get("args") or []
    if args:
        params += ["--args", join_args([str(a) for a in args])]
    for key in ("chdir", "disp", "desc"):
        if native.get(key):
            params += [f"--{key}", text(key)]
    if native.get("type"):
        kind = text("type")
        if kind not in ("auto", "manual"):
            raise ValueError(f"cygrunsrv type must be 'auto' or 'manual', not {kind!r}")
        params += ["--type", kind]
    env = native.get("env") or {}
    for key in sorted(env):
        value = str(env[key])
        if not key or "=" in key or "\0" in key + value:
            raise ValueError(f"cygrunsrv cannot set environment variable {key!r}")
        params += ["--env", f"{key}={value}"]
    for dep in native.get("deps") or []:
        params += ["--dep", str(dep)]
    termsig = native.get("termsig")
    if termsig and termsig != DEFAULT_TERMSIG:
        if not _SIGNAL.match(str(termsig)):
            raise ValueError(f"cygrunsrv termsig {termsig!r} is not a signal name or number")
        params += ["--termsig", str(termsig)]
    for key in ("stdin", "stdout", "stderr", "pidfile"):
        if native.get(key):
            params += [f"--{key}", text(key)]
    for flag in ("shutdown", "neverexits"):
        if native.get(flag):
            params.append(f"--{flag}")
    return params


class CygrunsrvBackend(Backend):
    """cygrunsrv params files; dependencies are Windows service dependencies."""

    name = "cygrunsrv"
    capabilities = Capabilities(
        prefers="foreground",
        dependencies="native",
        ordering="--dep: the service control manager starts dependencies first",
        user_switching=False,
        user_mode=False,
        tested="generated",
        readiness="emulated",
        notes="readiness: a dependent's proxy waits until dependencies that declare a "
              "check pass it (generated sh probes; Notify: only the engine waits); "
              "params checked against cygrunsrv's option rules and argument splitting; the "
              "activator runs against a fake cygrunsrv on Linux; services run as LocalSystem",
    )

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.prefix = env.get("PROCMGMT_CYGRUNSRV_PREFIX") or DEFAULT_PREFIX

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
        if _uses_proxy(spec, ctx.specs):
            wrap = spec.foreground is None
            exe = spec.daemon if wrap else spec.foreground
            assert exe is not None, "validation guarantees a daemon or a foreground process"
            args = spec.daemon_args if wrap else spec.foreground_args
            native["path"] = f"{ENTRY}/{proxy_file(spec.name)}"
            write_pid = _proxy.readiness_pid_file(spec, ctx.specs)
            native[PROXY_KEY] = {
                "name": spec.name,
                "command": [exe, *args],
                "wrap_daemon": wrap,
                "pid_file": spec.derived_pid_file(settings) if wrap or write_pid else None,
                "pid_dir": spec.own_pid_dir(settings) if wrap or write_pid else None,
                "write_pid_file": write_pid,
                **_proxy.readiness_options(spec, ctx.specs, settings, pid_waits=False),
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

    def validate(self, specs: Sequence[ProcessSpec],
                 ctx: BuildContext) -> list[tuple[str, str, str]]:
        """Names cygrunsrv cannot install, arguments its splitter cannot pass,
        environment names with ``=``."""
        problems: list[tuple[str, str, str]] = []
        for spec in specs:
            service = service_name(spec.name, self.prefix)
            if not _SERVICE.match(service):
                problems.append((spec.name, "name", f"service name {service!r} may only "
                                 "contain letters, digits and . _ @ -"))
            if _dependents(spec, ctx.specs):
                problems += _ready_sh.spec_problems(spec)
            if not _uses_proxy(spec, ctx.specs):
                for arg in spec.foreground_args:
                    problem = arg_problem(arg)
                    if problem:
                        problems.append((spec.name, "foreground_process_args",
                                         f"argument {arg!r} {problem}"))
            for key, value in spec.environment.items():
                if "=" in key or "\0" in key + value:
                    problems.append((spec.name, f"environment.{key}", "cygrunsrv --env "
                                     "cannot hold a name with '=' or a NUL character"))
        return problems

    def activator(self, settings: Settings) -> CygrunsrvActivator:
        """Runs cygrunsrv (``PROCMGMT_CYGRUNSRV`` names the executable)."""
        return CygrunsrvActivator(settings)


# --- activation ----------------------------------------------------------------------


def parse_query(output: str) -> dict[str, str]:
    """``cygrunsrv --query`` output (``Key   : value`` lines) as a dict."""
    facts: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            facts.setdefault(key.strip(), value.strip())
    return facts


class CygrunsrvActivator(Activator):
    """Installs, starts, stops and removes services with cygrunsrv.

    Every command goes through ``runner``; the default runs the executable
    named by ``$PROCMGMT_CYGRUNSRV`` (default ``cygrunsrv`` from PATH).
    """

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings)
        env = os.environ if environ is None else environ
        self.program = env.get("PROCMGMT_CYGRUNSRV") or CYGRUNSRV
        self.runner: Runner = runner or subprocess_runner

    def required_tools(self, gen: Generation) -> list[Tool]:
        """cygrunsrv (unless a runner stands in for it)."""
        if self.runner is not subprocess_runner:
            return []
        return [Tool("cygrunsrv", self.program, "the cygrunsrv backend deploys on Cygwin "
                     "(PROCMGMT_CYGRUNSRV names another executable); on this machine deploy "
                     "with another process manager (-P)")]

    def service(self, proc: DeployedProcess) -> str:
        """The service name recorded at build time."""
        return str(proc.extra.get("service") or service_name(proc.name, DEFAULT_PREFIX))

    def params(self, proc: DeployedProcess) -> list[str]:
        """The install params with ``@ENTRY@`` replaced by the store entry."""
        path = os.path.join(proc.path, str(proc.extra.get("params")))
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            raise DeployError(f"{proc.name}: cannot read the cygrunsrv params {path}: "
                              f"{exc}") from None
        return [str(p).replace(ENTRY, proc.path) for p in doc["params"]]

    def _run(self, proc: DeployedProcess, *args: str, check: bool = True) -> CommandResult:
        argv = [self.program, *args]
        result = self.runner(argv)
        if check and result.returncode != 0:
            shown = " ".join(argv[:3]) + (" ..." if len(argv) > 3 else "")
            raise DeployError(f"{proc.name}: '{shown}' failed (exit status "
                              f"{result.returncode}): {result.output.strip()}")
        return result

    def _query(self, proc: DeployedProcess) -> dict[str, str] | None:
        """The service's query facts, or None when it is not installed."""
        result = self._run(proc, "--query", self.service(proc), check=False)
        return parse_query(result.output) if result.returncode == 0 else None

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """Install (unless running already) and start; check that it runs."""
        name = self.service(proc)
        facts = self._query(proc)
        if facts is not None and facts.get("Current State") == "Running":
            return
        if facts is not None:
            self._run(proc, "--remove", name)
        self._run(proc, "--install", name, *self.params(proc))
        self._run(proc, "--start", name)
        st = self.status(gen, proc)
        if not st.running:
            raise DeployError(f"{proc.name}: cygrunsrv started {name} but it is {st.detail}")

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``--stop`` and ``--remove``; a service that is not installed is done."""
        name = self.service(proc)
        if self._run(proc, "--stop", name, check=False).returncode != 0:
            if self._query(proc) is None:
                return
            self._run(proc, "--stop", name)
        self._run(proc, "--remove", name)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """``--query``'s Current State; the pid from the pid file when it is live."""
        facts = self._query(proc)
        if facts is None:
            return ProcessStatus(proc.name, False, detail="not installed")
        state = facts.get("Current State", "unknown")
        verdict = pid_verdict(proc, self.settings)
        pid = verdict.pid if verdict.trusted else None
        return ProcessStatus(proc.name, state == "Running", pid, state)


__all__ = [
    "CygrunsrvActivator",
    "CygrunsrvBackend",
    "join_args",
    "parse_query",
    "quote_arg",
    "split_args",
]
