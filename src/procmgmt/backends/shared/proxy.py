"""The foreground proxy: a generated POSIX ``sh`` script that makes any process look
like a foreground process to a supervisor (supervisord, launchd, cygrunsrv).

Supervisors that track one child (supervisord, launchd, cygrunsrv) cannot run a
process that only daemonizes: its start command exits at once and the real
daemon is reparented away. They also cannot run ``initialize`` as root before
dropping to the service user, because they start the whole command as one
user. The proxy fills both gaps:

* optionally (``wait_for``), it first waits until each dependency's pid file
  names a live process, which gives managers without dependencies (launchd)
  a start order even when they start everything at once; then
  (``wait_ready``) until each dependency that declares a readiness check
  passes it (the generated sh probes of :mod:`procmgmt.backends.shared.ready`),
  so a dependent starts only once its dependencies are *ready*, also when
  the manager starts things without procmgmt (boot, ``procmgmt run``, a
  supervisord restart); during procmgmt's own switch the dependencies are
  ready already and the wait returns at once,
* it runs ``initialize`` (as whoever starts the proxy, normally root) in a
  subshell and fails the start if the snippet fails,
* it applies ``directory``/``umask`` *after* ``initialize`` (which may be what
  creates the directory),
* then it either ``exec``\\ s the foreground command (so the supervisor tracks
  the real program: no extra process), or, in *wrap-daemon* mode, starts the
  daemon, waits for its pid file (with a timeout and a clear "giving up"
  error), and waits for that pid, forwarding TERM/INT/HUP to it. It exits
  when the daemon exits. If the daemon ignores a forwarded stop signal it is
  killed after ``kill_after`` seconds, so it does not outlive the proxy when the
  supervisor's own SIGKILL hits only the proxy's process group.

The daemon is not a child of the proxy, so ``wait`` cannot be used. The proxy
polls with ``kill -0``; zombie checks use ``/proc`` where it exists. The
``sleep`` used between polls runs in the background and is killed by the signal
trap, so a stop is handled at once and no stray ``sleep`` is left behind.

The script uses only POSIX sh (checked with ``shellcheck -s sh`` and ``dash -n``
in the tests). The only non-POSIX tool is ``setpriv`` (util-linux), used when
the proxy has to drop privileges; ``sleep`` with a fractional argument is
detected at run time and falls back to whole seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends._shell import (
    MAKE_PIDDIR_SH,
    PID_OWNED_SH,
    command_line,
    export_lines,
    in_double_quotes,
    quote,
    shell_file,
)
from procmgmt.backends.base import BuildContext
from procmgmt.backends.shared import ready
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: Key of the proxy's parameters in a backend's native model (a plain dict of
#: :class:`ProxyOptions` fields, patched by overrides; never rendered as a key).
PROXY_KEY = "_proxy"

#: Waiting for dependencies (and their readiness): the trap handlers, the
#: liveness test and ``procmgmt_wait_for_dependency NAME PID_FILE``.
WAIT_FOR_SH = shell_file("procmgmt.backends.shared", "sh/proxy_wait_for.sh")
#: Wrap-daemon mode before the daemon's start command: signal forwarding, the
#: poll pause, the pid file reader that trusts only the user's pids.
DAEMON_HEAD_SH = shell_file("procmgmt.backends.shared", "sh/proxy_daemon_head.sh")
#: Wrap-daemon mode after the start command: wait for the pid file, then for
#: the daemon, killing it when it ignores a forwarded stop.
DAEMON_TAIL_SH = shell_file("procmgmt.backends.shared", "sh/proxy_daemon_tail.sh")

#: Seconds to wait for a daemon's pid file before giving up.
DEFAULT_PID_FILE_TIMEOUT = 10
#: Seconds between a forwarded TERM/INT and a SIGKILL to a daemon that ignores it.
DEFAULT_KILL_AFTER = 8
#: Seconds to wait for the dependencies (``wait_for``) before giving up.
DEFAULT_WAIT_TIMEOUT = 60


def kill_after(stop_timeout: float | None) -> int:
    """The proxy's ``kill_after`` for a process whose manager sends SIGKILL after
    ``stop_timeout`` seconds: the proxy kills the daemon first (at four fifths,
    so it does not outlive the proxy), and None keeps :data:`DEFAULT_KILL_AFTER`."""
    if stop_timeout is None:
        return DEFAULT_KILL_AFTER
    return max(1, math.floor(stop_timeout * 0.8))


def proxy_params(spec: ProcessSpec, settings: Settings, *, write_pid: bool,
                 user: str | None, pid_dir: bool = True) -> dict[str, Any]:
    """The proxy parameters every backend that runs ``spec`` through the shared
    proxy gives alike (each adds its own: readiness waits, environment,
    liveness): the program (the daemon, wrapped, when there is no foreground
    form), its pid file when the proxy wraps a daemon or writes one
    (``write_pid``), that pid file's own directory unless ``pid_dir`` is False
    (a proxy that never runs as root cannot make it), the user to drop to,
    and the stop timing."""
    wrap = spec.foreground is None
    exe = spec.daemon if wrap else spec.foreground
    assert exe is not None, "validation guarantees a daemon or a foreground process"
    args = spec.daemon_args if wrap else spec.foreground_args
    has_pid = wrap or write_pid
    return {
        "name": spec.name,
        "command": [exe, *args],
        "wrap_daemon": wrap,
        "pid_file": spec.derived_pid_file(settings) if has_pid else None,
        "pid_dir": spec.own_pid_dir(settings) if has_pid and pid_dir else None,
        "write_pid_file": write_pid,
        "initialize": spec.initialize,
        "directory": spec.directory,
        "umask": spec.umask,
        "nice": spec.nice,
        "user": user,
        "pid_file_timeout": DEFAULT_PID_FILE_TIMEOUT,
        "kill_after": kill_after(spec.stop_timeout),
        "stop_signal": spec.stop_signal,
    }


@dataclass(frozen=True)
class ProxyOptions:
    """Everything a proxy script is generated from (plain data, so it can live
    in a backend's native model and be patched by overrides)."""

    #: Process name, used in messages.
    name: str
    #: The command to run: the foreground program, or the daemon's start command.
    command: tuple[str, ...]
    #: True: ``command`` daemonizes; wait for ``pid_file`` and then for that pid.
    wrap_daemon: bool = False
    pid_file: str | None = None
    initialize: str = ""
    directory: str | None = None
    umask: str | None = None
    nice: int | None = None
    #: Drop to this user (after ``initialize``) before running ``command``.
    user: str | None = None
    #: The process's own pid directory (``Settings.pid_dir``) to create, owned
    #: by ``user``, before the pid file is written; None when there is none.
    pid_dir: str | None = None
    #: Extra variables exported before ``command`` (those the supervisor cannot set).
    environment: Mapping[str, str] = field(default_factory=dict)
    pid_file_timeout: int = DEFAULT_PID_FILE_TIMEOUT
    #: None: never escalate to SIGKILL.
    kill_after: int | None = DEFAULT_KILL_AFTER
    #: Wrap-daemon mode: the signal that stops the daemon. The proxy forwards it
    #: in place of SIGTERM (which launchd always sends), and traps it as well.
    stop_signal: str = "TERM"
    #: Dependency name -> its pid file: before anything else, wait until each pid
    #: file names a live process (for managers without dependencies, e.g. launchd).
    wait_for: Mapping[str, str] = field(default_factory=dict)
    #: Seconds to wait for all of ``wait_for`` together before giving up (exit 1).
    wait_timeout: int = DEFAULT_WAIT_TIMEOUT
    #: Foreground mode: write the proxy's pid (which the program keeps through
    #: ``exec``) into ``pid_file`` first, so dependents can wait for it.
    write_pid_file: bool = False
    #: Dependency name -> {"readiness": its declaration as JSON, "pid_file": its
    #: pid file (a PidFile check without a path), "log_offset_file": where its
    #: proxy records its log size at start (LogLine)}: after ``wait_for``, wait
    #: until each one's check passes (each with its own interval and timeout).
    wait_ready: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Log file -> marker file: before the program starts, record the log's size
    #: in the marker, so dependents' LogLine waits read only what this start wrote.
    record_log_offset: Mapping[str, str] = field(default_factory=dict)
    #: Foreground mode: the liveness wrapper (:mod:`.liveness`) to exec the
    #: program through, as a file name in the proxy's own directory; None: none.
    liveness: str | None = None
    #: Foreground mode: words the final ``exec`` runs the program through (runit's
    #: ``chpst -P``, when its run script reads this proxy into its own shell).
    exec_prefix: tuple[str, ...] = ()


def _has_dependents(spec: ProcessSpec, ctx: BuildContext) -> bool:
    return bool(ctx.dependents(spec.name))


def readiness_options(spec: ProcessSpec, ctx: BuildContext,
                      settings: Settings, *, pid_waits: bool) -> dict[str, Any]:
    """The ProxyOptions fields (as plain data) that make ``spec``'s proxy wait for its
    dependencies: with ``pid_waits`` each one running first (``wait_for``: pid
    files; for managers that do not order starts at all), then, where it declares
    an sh-checkable readiness check, ready (``wait_ready``); plus, when ``spec``
    itself has dependents and a LogLine check, the log size recorded at start."""
    specs = ctx.specs
    deps = [specs[d] for d in spec.dependencies if d in specs]
    options: dict[str, Any] = {
        "wait_for": {d.name: d.derived_pid_file(settings) for d in deps} if pid_waits else {},
        "wait_timeout": DEFAULT_WAIT_TIMEOUT,
        "wait_ready": ready.dependency_waits(spec, specs, settings),
        "record_log_offset": {},
    }
    check = spec.readiness
    if isinstance(check, rd.LogLine) and _has_dependents(spec, ctx):
        options["record_log_offset"] = {check.path: ready.log_offset_file(spec, settings)}
    return options


def readiness_needs_proxy(spec: ProcessSpec, ctx: BuildContext) -> bool:
    """For managers that order starts themselves (supervisord, cygrunsrv): the proxy
    is needed when a dependency declares an sh-checkable readiness check (to wait
    for it), or when dependents check this process's LogLine (the proxy records
    the log size at start) or its own pid file (:func:`readiness_pid_file`)."""
    specs = ctx.specs
    if any(ready.checkable(specs[d].readiness) for d in spec.dependencies if d in specs):
        return True
    return _has_dependents(spec, ctx) and (
        isinstance(spec.readiness, rd.LogLine) or readiness_pid_file(spec, ctx))


def readiness_pid_file(spec: ProcessSpec, ctx: BuildContext) -> bool:
    """True when a foreground process's proxy must write its pid file: dependents
    wait for a PidFile check without a path, which names that pid file."""
    return (spec.foreground is not None and _has_dependents(spec, ctx)
            and isinstance(spec.readiness, rd.PidFile) and not spec.readiness.path)


def uses_proxy(spec: ProcessSpec, ctx: BuildContext, *, manager_lacks: bool = False) -> bool:
    """Whether ``spec`` runs through the proxy: it only daemonizes, it has an
    ``initialize`` snippet (run before dropping to the user), readiness needs it
    (:func:`readiness_needs_proxy`), or ``manager_lacks``: the backend's manager
    cannot do something the process asks for (cygrunsrv: umask, nice; supervisord:
    a negative nice level before dropping to the user; launchd: any ordering)."""
    return (spec.foreground is None or bool(spec.initialize.strip()) or manager_lacks
            or readiness_needs_proxy(spec, ctx))


def proxy_file(name: str) -> str:
    """Where a process's proxy script lives, relative to its store entry."""
    return f"bin/{name}-proxy"


def wraps_daemon(native_proxy: Any) -> bool:
    """True when a backend's native proxy parameters wrap a self-daemonizing process:
    the daemon is then no child of the proxy, and its pid comes from its pid file
    (recorded in the manifest, so readiness knows whose listener to accept)."""
    return isinstance(native_proxy, Mapping) and bool(native_proxy.get("wrap_daemon"))


def options_from_native(proxy: Mapping[str, Any]) -> ProxyOptions:
    """ProxyOptions from a backend's native model entry (lists and dicts as loaded)."""
    return ProxyOptions(**{
        **proxy,
        "command": tuple(proxy["command"]),
        "environment": dict(proxy.get("environment") or {}),
        "wait_for": dict(proxy.get("wait_for") or {}),
        "wait_ready": {str(k): dict(v) for k, v in (proxy.get("wait_ready") or {}).items()},
        "record_log_offset": dict(proxy.get("record_log_offset") or {}),
        "exec_prefix": tuple(proxy.get("exec_prefix") or ()),
    })


def user_lookup_lines(user: str) -> list[str]:
    """Lines that look up ``user``'s primary group into ``$procmgmt_proxy_gid`` (at run
    time: the user may only be created during activation), failing clearly."""
    q = quote(user)
    shown = in_double_quotes(user)
    return [
        f"if ! procmgmt_proxy_gid=$(id -g {q}); then",
        f"    echo \"$procmgmt_name: cannot switch to user {shown}: no such user\" >&2",
        "    exit 1",
        "fi",
    ]


def _assign(text: str) -> str:
    """A single-quoted assignment value (always quoted: no word looks like a command)."""
    return "'" + text.replace("'", "'\\''") + "'"


def command_words(opts: ProxyOptions) -> str:
    """The shell command that runs ``opts.command``: ``nice`` first (a negative
    level needs root), then ``setpriv`` to drop to the user. ``setpriv`` execs in
    place (unlike ``su``, which stays as a parent), keeps the environment and
    sets real and effective ids plus the user's supplementary groups."""
    words: list[str] = []
    if opts.nice is not None:
        words += ["nice", "-n", str(opts.nice)]
    program = command_line(opts.command)
    if opts.liveness:
        # Next to this proxy (procmgmt_proxy_here: see generate).
        program = '"$procmgmt_proxy_here"/' + quote(opts.liveness) + " " + program
    words = [*opts.exec_prefix, *words]
    if opts.user:
        words += ["setpriv", f"--reuid={opts.user}"]
        return (command_line(words) + ' --regid="$procmgmt_proxy_gid" --init-groups -- '
                + program)
    return " ".join([*(quote(w) for w in words), program])


def check_options(opts: ProxyOptions) -> list[str]:
    """Problems that make ``opts`` impossible to render (empty when fine)."""
    problems = []
    if not opts.command:
        problems.append("the proxy needs a command")
    if opts.wrap_daemon and not opts.pid_file:
        problems.append("wrapping a daemon needs its pid file")
    texts = [opts.name, *opts.command, opts.pid_file or "", opts.initialize,
             opts.directory or "", opts.user or "", *opts.environment.keys(),
             *opts.environment.values()]
    if any("\0" in t for t in texts):
        problems.append("a NUL character cannot be passed to a program")
    if opts.pid_file_timeout < 1:
        problems.append("pid_file_timeout must be at least 1 second")
    if opts.write_pid_file and (opts.wrap_daemon or not opts.pid_file):
        problems.append("write_pid_file needs a pid file and a foreground process "
                        "(a wrapped daemon writes its own)")
    if opts.wait_for and opts.wait_timeout < 1:
        problems.append("wait_timeout must be at least 1 second")
    if any("\0" in t for pair in opts.wait_for.items() for t in pair):
        problems.append("a NUL character cannot be in a dependency's name or pid file")
    for dep, wait in opts.wait_ready.items():
        try:
            check = rd.from_json(wait.get("readiness"))
        except (TypeError, ValueError) as exc:
            problems.append(f"wait_ready.{dep}: {exc}")
            continue
        if not ready.checkable(check):
            problems.append(f"wait_ready.{dep}: no readiness check that sh can probe")
        else:
            problems += [f"wait_ready.{dep}: {field_} {msg}"
                         for field_, msg in ready.problems(check)]
    if opts.liveness is not None and (opts.wrap_daemon or "/" in opts.liveness
                                      or opts.liveness in ("", ".", "..")):
        problems.append("liveness names a file next to the proxy, for a foreground program")
    if opts.exec_prefix and opts.wrap_daemon:
        problems.append("exec_prefix is for a foreground program (a wrapped daemon's "
                        "proxy stays its parent)")
    if any("\0" in t for t in opts.exec_prefix):
        problems.append("a NUL character cannot be passed to a program")
    if any("\0" in t for pair in opts.record_log_offset.items() for t in pair):
        problems.append("a NUL character cannot be in a log or marker file name")
    return problems


def generate(opts: ProxyOptions) -> str:
    """The proxy script for ``opts`` (raises ValueError when it cannot be rendered)."""
    problems = check_options(opts)
    if problems:
        raise ValueError(f"{opts.name}: " + "; ".join(problems))
    mode = "wraps a self-daemonizing process" if opts.wrap_daemon else "runs a foreground process"
    lines = [
        "#!/bin/sh",
        "# Values are single-quoted on purpose: '$', '`' and quotes in them are literal.",
        "# shellcheck disable=SC2016,SC2089,SC2090",
        f"# Foreground proxy of {opts.name} (generated by procmgmt): {mode}.",
        "# Runs initialize before dropping privileges and keeps the supervisor's",
        "# view of the process accurate. Do not edit: regenerate instead.",
    ]
    if (opts.wrap_daemon or opts.user or opts.initialize.strip() or opts.wait_for
            or opts.write_pid_file or opts.wait_ready or opts.record_log_offset):
        lines.append(f"procmgmt_name={_assign(opts.name)}")
    if opts.liveness:
        lines += ["# The liveness wrapper is next to this script (found before any cd).",
                  'if ! procmgmt_proxy_here=$(cd "${0%/*}" && pwd); then',
                  '    echo "$0: cannot find its own directory" >&2',
                  "    exit 1",
                  "fi"]
    if opts.wait_for or opts.wait_ready:
        lines += wait_for_lines(opts)
    if opts.initialize.strip():
        lines += [
            "",
            "# initialize runs in a subshell as the invoking user (root in privileged",
            "# deployments); a failure fails the start.",
            "(",
            opts.initialize.rstrip("\n"),
            ")",
            "procmgmt_rc=$?",
            'if [ "$procmgmt_rc" -ne 0 ]; then',
            '    echo "$procmgmt_name: initialize failed with exit status $procmgmt_rc" >&2',
            '    exit "$procmgmt_rc"',
            "fi",
        ]
    if opts.directory or opts.umask or opts.environment or opts.user:
        lines.append("")
    if opts.directory:
        lines.append(f"cd {quote(opts.directory)} || exit 1")
    if opts.umask:
        lines.append(f"umask {opts.umask}")
    lines += export_lines(dict(opts.environment))
    for log_path, marker in sorted(opts.record_log_offset.items()):
        lines += ready.record_offset_lines(log_path, marker)
    if opts.user:
        lines += user_lookup_lines(opts.user)
    if opts.pid_dir:
        lines += ["", MAKE_PIDDIR_SH.rstrip("\n"),
                  f"procmgmt_make_piddir {_assign(opts.pid_dir)} {_assign(opts.user or '')}"
                  " || exit 1"]
    cmd = command_words(opts)
    if not opts.wrap_daemon:
        if opts.write_pid_file:
            assert opts.pid_file is not None
            lines += [
                "",
                "# exec keeps this pid: the pid file names the program itself.",
                f"procmgmt_proxy_pid_file={_assign(opts.pid_file)}",
                'if ! echo "$$" > "$procmgmt_proxy_pid_file"; then',
                '    echo "$procmgmt_name: cannot write the pid file $procmgmt_proxy_pid_file" >&2',
                "    exit 1",
                "fi",
            ]
        lines += ["", f"exec {cmd}"]
        return "\n".join(lines) + "\n"
    assert opts.pid_file is not None
    kill_after = "" if opts.kill_after is None else str(opts.kill_after)
    uid = f'$(id -u {quote(opts.user)})' if opts.user else ""
    lines += [
        f"procmgmt_pid_file={_assign(opts.pid_file)}",
        f"procmgmt_pf_timeout={opts.pid_file_timeout}",
        f"procmgmt_kill_after={kill_after}",
        f"procmgmt_stop_signal={_stop_signal(opts.stop_signal)}",
        f"procmgmt_proxy_uid={uid}",
        "",
        PID_OWNED_SH.rstrip("\n"),
        DAEMON_HEAD_SH.rstrip("\n"),
        *([f"trap 'procmgmt_on_signal {opts.stop_signal}' {opts.stop_signal}", ""]
          if opts.stop_signal not in ("TERM", "INT", "HUP") else [""]),
        "# Start the daemon; its start command returns once it has daemonized.",
        cmd,
        DAEMON_TAIL_SH,
    ]
    return "\n".join(lines)


def _stop_signal(name: str) -> str:
    if not re.fullmatch(r"[A-Z][A-Z0-9]*", name) or name == "HUP":
        raise ValueError(f"_proxy.stop_signal: {name!r} is not a stop signal name (without SIG)")
    return name


def wait_for_lines(opts: ProxyOptions) -> list[str]:
    """Lines that block until every dependency's pid file names a live process
    (``wait_for``), then until every dependency with a readiness declaration
    passes its check (``wait_ready``; a timeout exits 1 with the check and the
    last error, and the manager's restart policy tries again).

    Managers without dependencies (launchd starts all jobs at once at boot)
    get their order from this wait; managers that order starts but do not wait
    (supervisord's priorities, the Windows SCM's "running") get readiness.
    A Notify declaration cannot be probed from sh: for it only "running"
    counts here (the engine waits for READY=1 during a switch). A live process
    is one ``kill -0`` reaches, or, when it belongs to another
    user (``kill -0`` fails with EPERM), one ``ps -p`` lists; zombies do not
    count where ``/proc`` tells. A stale pid file whose pid was reused by an
    unrelated process would count as up: pid files cannot tell the difference.
    """
    lines = [
        "",
        "# Wait until every dependency runs (its pid file names a live process)",
        "# and, where it declares a readiness check, is ready.",
        f"procmgmt_wait_timeout={opts.wait_timeout}",
        WAIT_FOR_SH.strip("\n"),
    ]
    for name, pid_file in sorted(opts.wait_for.items()):
        lines.append(f"procmgmt_wait_for_dependency {_assign(name)} {_assign(pid_file)}")
    checks = {dep: rd.from_json(w.get("readiness")) for dep, w in opts.wait_ready.items()}
    probed = {dep: c for dep, c in checks.items() if c is not None}
    if probed:
        lines += ["", ready.library(list(probed.values())).rstrip("\n")]
    for dep, check in sorted(probed.items()):
        wait = opts.wait_ready[dep]
        lines += ready.wait_lines(
            f"{opts.name}: dependency {dep}", check,
            pid_file=str(wait.get("pid_file") or "") or None,
            offset_file=str(wait.get("log_offset_file") or ""))
        lines[-1] += " || exit 1"
    lines.append("trap - TERM INT HUP")
    return lines
