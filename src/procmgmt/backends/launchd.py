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

``KeepAlive`` is ``{SuccessfulExit: false}``: launchd restarts a job that
failed (or a proxy that gave up waiting for a dependency, after launchd's
ThrottleInterval) but not one that exited cleanly after a stop.

**Rendering.** The native model is the plist dictionary itself (every
launchd key is reachable through overrides, a dict deep-merge or a
callable); keys starting with ``_`` are procmgmt's (``_proxy``: the proxy's
parameters) and are never written. ``plistlib`` renders the types (bool,
integer, real, string, array, dict, date); a None anywhere is an error that
names the key (the original wrote an empty key), and the result must read
back equal (``plistlib`` turns ``\\r`` into ``\\n``, for instance) and pass
:mod:`procmgmt.backends.launchd_schema` (unknown keys: warnings; wrong types:
errors).

**Activation** (:class:`LaunchdActivator`, for macOS; on Linux only with an
injected runner): the plist is copied into ``$PROCMGMT_LAUNCHD_TARGET_DIR``
(default ``/Library/LaunchDaemons`` as root, ``~/Library/LaunchAgents``
otherwise), then ``launchctl enable <domain>/<label>``, ``launchctl
bootstrap <domain> <plist>`` and ``launchctl kickstart <domain>/<label>``;
the domain is ``system`` as root, ``gui/<uid>`` otherwise. ``enable`` comes
first because ``bootstrap`` refuses a service that was once disabled
(launchd remembers that outside the plist). Stop: ``launchctl bootout
<domain>/<label>`` and the copy is removed. Status parses ``launchctl print
<domain>/<label>``.
"""

from __future__ import annotations

import math
import os
import plistlib
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt import fsutil
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
from procmgmt.backends.launchd_schema import check_plist
from procmgmt.backends.shared import proxy as _proxy
from procmgmt.backends.shared import ready as _ready_sh
from procmgmt.backends.shared.proxy import PROXY_KEY
from procmgmt.errors import DeployError
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec, dependents_of
from procmgmt.settings import Settings

DEFAULT_PREFIX = "org.procmgmt."
DAEMONS_DIR = "Library/LaunchDaemons"
AGENTS_DIR = "Library/LaunchAgents"
#: The shell the embedded proxy runs with.
PROXY_SHELL = "/bin/sh"
#: Seconds the activator waits for a started job to run.
DEFAULT_START_TIMEOUT = 10.0
LAUNCHCTL = "launchctl"
_LABEL = re.compile(r"^[A-Za-z0-9._-]+$")


def label_of(name: str, prefix: str) -> str:
    """The job label of process ``name``."""
    return f"{prefix}{name}"


def plist_path(label: str, privileged: bool) -> str:
    """Where the plist lives in the store entry (the same layout as on macOS)."""
    return f"{DAEMONS_DIR if privileged else AGENTS_DIR}/{label}.plist"


def _dependents(spec: ProcessSpec, ctx: BuildContext) -> list[str]:
    return dependents_of(ctx.specs, spec.name)


def find_none(value: Any, where: str = "") -> str | None:
    """The dotted path of the first None inside ``value`` (sorted keys), or None."""
    if value is None:
        return where or "<top>"
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            found = find_none(value[key], f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_none(item, f"{where}[{i}]")
            if found:
                return found
    return None


def _equal(a: Any, b: Any) -> bool:
    """Plist equality: tuples read back as lists, NaN equals NaN."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and bool(a == b)


def render_plist(job: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The XML plist of a job dictionary and the schema warnings.

    Raises ValueError for a None value (naming the key), a value plistlib
    cannot write, a plist that would not read back equal, or a type error
    against the launchd schema.
    """
    missing = find_none(job)
    if missing:
        raise ValueError(f"launchd key {missing} is None: remove the key or give it a value")
    report = check_plist(job)
    if report.errors:
        raise ValueError("launchd plist: " + "; ".join(report.errors))
    try:
        data = plistlib.dumps(dict(job), fmt=plistlib.FMT_XML, sort_keys=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"launchd plist cannot be written: {exc}") from None
    if not _equal(plistlib.loads(data), job):
        raise ValueError("launchd plist does not read back as written (a string with a "
                         "carriage return?)")
    return data.decode("utf-8"), report.warnings


class LaunchdBackend(Backend):
    """launchd property lists; dependencies emulated by the proxy's wait."""

    name = "launchd"
    capabilities = Capabilities(
        prefers="foreground",
        dependencies="emulated",
        ordering="proxy waits for dependency pid files",
        user_switching=True,
        user_mode=True,
        tested="generated",
        readiness="emulated",
        notes="plists checked with plistlib, xmllint and a launchd key schema; the proxy's "
              "dependency wait (running, then the dependency's declared readiness check "
              "as generated sh probes) runs for real on Linux; launchctl is not run here",
    )

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.prefix = env.get("PROCMGMT_LAUNCHD_PREFIX") or DEFAULT_PREFIX

    def uses_proxy(self, spec: ProcessSpec, ctx: BuildContext) -> bool:
        """Daemon-only, initialize, dependencies, or a dependency of others."""
        return _proxy.uses_proxy(spec, ctx.specs, manager_lacks=bool(spec.dependencies)
                                 or bool(_dependents(spec, ctx)))

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
                "kill_after": _proxy.DEFAULT_KILL_AFTER,
                "stop_signal": spec.stop_signal,
                **_proxy.readiness_options(spec, ctx.specs, settings, pid_waits=True),
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
            "KeepAlive": {"SuccessfulExit": False},
            "StandardOutPath": log,
            "StandardErrorPath": log,
        })
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

    def validate(self, specs: Sequence[ProcessSpec],
                 ctx: BuildContext) -> list[tuple[str, str, str]]:
        """Labels must be file-name and service-target safe; plist strings must be
        XML text (no control characters but tab and newline, no carriage return);
        a dependency's readiness check must be expressible in sh."""
        problems: list[tuple[str, str, str]] = []
        for spec in specs:
            if _dependents(spec, ctx):
                problems += _ready_sh.spec_problems(spec)
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
        return problems

    def activator(self, settings: Settings) -> LaunchdActivator:
        """launchctl-driven activation (macOS; on Linux only with an injected runner)."""
        return LaunchdActivator(settings)


# --- activation -------------------------------------------------------------------


def parse_print(output: str) -> dict[str, str]:
    """The top-level ``key = value`` lines of ``launchctl print <service>``.

    The output is a nested, indented text block (``{ ... }`` sections such
    as ``environment = {``); only the service's own first-level keys are
    taken (``state``, ``pid``, ``last exit code``, ``path``...).
    """
    facts: dict[str, str] = {}
    depth = 0
    for raw in output.splitlines():
        line = raw.strip()
        if line.endswith("{"):
            depth += 1
            if depth == 1:
                continue
        if line == "}":
            depth -= 1
            continue
        if depth == 1 and " = " in line:
            key, _, value = line.partition(" = ")
            facts.setdefault(key.strip(), value.strip())
    return facts


class LaunchdActivator(Activator):
    """Copies plists into the target dir and drives them with launchctl.

    Every command goes through ``runner`` (tests record the plan and answer
    ``print`` with canned output).
    """

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 environ: Mapping[str, str] | None = None, uid: int | None = None,
                 start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        super().__init__(settings)
        env = os.environ if environ is None else environ
        self.runner: Runner = runner or subprocess_runner
        self.uid = os.getuid() if uid is None else uid
        home = env.get("HOME") or os.path.expanduser("~")
        default_dir = ("/" + DAEMONS_DIR if self.uid == 0
                       else os.path.join(home, AGENTS_DIR))
        self.target_dir = env.get("PROCMGMT_LAUNCHD_TARGET_DIR") or default_dir
        self.domain = "system" if self.uid == 0 else f"gui/{self.uid}"
        self.start_timeout = start_timeout

    def required_tools(self, gen: Generation) -> list[Tool]:
        """launchctl (unless a runner stands in for it)."""
        if self.runner is not subprocess_runner:
            return []
        return [Tool("launchctl", LAUNCHCTL, "the launchd backend deploys on macOS; on this "
                     "machine deploy with another process manager (-P)")]

    def label(self, proc: DeployedProcess) -> str:
        """The job label recorded at build time."""
        return str(proc.extra.get("label") or label_of(proc.name, DEFAULT_PREFIX))

    def service(self, proc: DeployedProcess) -> str:
        """``<domain>/<label>``: launchctl's service target."""
        return f"{self.domain}/{self.label(proc)}"

    def installed_plist(self, proc: DeployedProcess) -> str:
        """The copy in the target dir."""
        return os.path.join(self.target_dir, f"{self.label(proc)}.plist")

    def _run(self, proc: DeployedProcess, *args: str, check: bool = True) -> CommandResult:
        argv = [LAUNCHCTL, *args]
        result = self.runner(argv)
        if check and result.returncode != 0:
            tail = result.output.strip()
            raise DeployError(f"{proc.name}: '{' '.join(argv)}' failed (exit status "
                              f"{result.returncode})" + (f": {tail}" if tail else ""))
        return result

    def _copy(self, proc: DeployedProcess) -> str:
        """Copy the store plist into the target dir atomically (0644)."""
        source = os.path.join(proc.path, str(proc.extra.get("plist")))
        target = self.installed_plist(proc)
        fsutil.ensure_dir(self.target_dir)
        with open(source, "rb") as f:
            data = f.read()
        fd, tmp = tempfile.mkstemp(prefix=".procmgmt-", dir=self.target_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return target

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """Copy, (bootout a stale load of the label), enable, bootstrap, kickstart;
        then wait until launchctl reports it running."""
        target = self._copy(proc)
        if self._run(proc, "print", self.service(proc), check=False).returncode == 0:
            # Loaded already (an interrupted switch): reload so our plist counts.
            self._run(proc, "bootout", self.service(proc))
        self._run(proc, "enable", self.service(proc))
        self._run(proc, "bootstrap", self.domain, target)
        self._run(proc, "kickstart", self.service(proc))
        deadline = time.monotonic() + self.start_timeout
        while True:
            st = self.status(gen, proc)
            if st.running:
                return
            if time.monotonic() >= deadline:
                raise DeployError(f"{proc.name}: launchd did not run {self.label(proc)} "
                                  f"within {self.start_timeout:g} s ({st.detail})")
            time.sleep(0.05)

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``bootout`` (launchd sends SIGTERM, then SIGKILL after ExitTimeOut) and
        remove the copy; a job that is not loaded is stopped already."""
        result = self._run(proc, "bootout", self.service(proc), check=False)
        if result.returncode != 0 and self.status(gen, proc).running:
            raise DeployError(f"{proc.name}: 'launchctl bootout {self.service(proc)}' failed "
                              f"(exit status {result.returncode}): {result.output.strip()}")
        copy = self.installed_plist(proc)
        if os.path.exists(copy):
            os.unlink(copy)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """``launchctl print``: state and pid; the daemon's pid (from its pid file)
        in the detail for a proxied process."""
        result = self._run(proc, "print", self.service(proc), check=False)
        if result.returncode != 0:
            return ProcessStatus(proc.name, False, detail="not loaded")
        facts = parse_print(result.output)
        state = facts.get("state", "unknown")
        pid_text = facts.get("pid", "")
        pid = int(pid_text) if pid_text.isdigit() else None
        detail = state
        if proc.extra.get("proxy") and proc.pid_file:
            verdict = pid_verdict(proc, self.settings)
            if verdict.trusted:
                detail += f" (program pid {verdict.pid})"
            elif verdict.refused:
                detail += f" ({verdict.detail})"
        return ProcessStatus(proc.name, state == "running" and pid is not None, pid, detail)


__all__ = ["LaunchdActivator", "LaunchdBackend", "parse_print", "render_plist"]
