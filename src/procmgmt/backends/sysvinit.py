"""sysvinit backend: self-contained LSB init scripts plus rcN.d S/K links.

The original generated scripts on top of the Linux From Scratch
init-functions and libslack's ``daemon``, which tied every script to a
patched library and an extra package. Here every script is plain POSIX
``sh`` carrying its own small helpers, so it runs anywhere: under a real
sysvinit, under ``dash`` from a container entry point, or by an unprivileged
user straight from the store. No init system, no /lib/lsb/init-functions and
no procmgmt installation are needed at run time.

Mode selection follows the original's table: a process that can daemonize
runs as a daemon (it forks and writes its own pid file; the script waits
until the pid file names a live process). A foreground-only process is
daemonized by the script itself: ``setsid`` when available, stdin from
/dev/null, output appended to the log file, and the pid written to the pid
file.

The native model is a plain dict (see :meth:`SysVInitBackend.translate`)
and the script is rendered from that dict only, so a user override can
change anything the script does.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

from procmgmt import fsutil
from procmgmt import readiness as rd
from procmgmt.backends import _activation
from procmgmt.backends._activation import (
    pid_alive,
    pid_file_status,
    pid_verdict,
)
from procmgmt.backends._shell import (
    MAKE_PIDDIR_SH,
    PID_OWNED_SH,
    command_line,
    export_lines,
    quote,
)
from procmgmt.backends._shell import in_double_quotes as _msg
from procmgmt.backends.base import (
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    DeployedProcess,
    File,
    Generation,
    ProcessStatus,
)
from procmgmt.backends.shared import ready as _ready_sh
from procmgmt.deploy.state import directory_mode
from procmgmt.errors import DeployError
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.numbers import seconds_problem
from procmgmt.settings import Settings

SUPPORTED_RUNLEVELS = (0, 1, 2, 3, 4, 5, 6)
DEFAULT_START = (2, 3, 4, 5)
DEFAULT_STOP = (0, 1, 6)
MIN_SEQUENCE = 0
MAX_SEQUENCE = 99
#: Seconds stop waits after SIGTERM before SIGKILL.
DEFAULT_STOP_TIMEOUT = 10
#: Seconds start waits for a daemon's pid file to name a live process.
DEFAULT_START_TIMEOUT = 10
#: Seconds a daemonized foreground process must survive to count as started.
DEFAULT_START_GRACE = 0.5
#: Order of the standard activities in the ``case``; others follow sorted.
STANDARD_ACTIVITIES = ("start", "stop", "reload", "restart", "status")
#: Extra seconds the activator allows beyond the script's own timeouts.
ACTIVATOR_SLACK = 60

_ACTIVITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_SIGNAL_NAME = re.compile(r"^[A-Z][A-Z0-9+-]*\Z")

# The helpers every script carries. They are the same in every script and
# use only POSIX sh and utilities (kill, sleep, rm, cat, ps as a fallback);
# /proc is used when present to see zombies and process groups.
_HELPERS = PID_OWNED_SH + "\n" + MAKE_PIDDIR_SH + r"""
# procmgmt_poll TENTHS CMD...: run CMD until it succeeds, for at most TENTHS
# tenths of a second. The first tenth is polled every 10 ms (a SIGTERMed
# process or a forking daemon is usually done within milliseconds), then
# every 0.1 s. Fractional sleep is not POSIX: where sleep refuses it, whole
# seconds are used instead.
procmgmt_poll() {
    procmgmt_left=$1
    procmgmt_fast=10
    shift
    while ! "$@"; do
        [ "$procmgmt_left" -gt 0 ] || return 1
        if [ "$procmgmt_fast" -gt 0 ]; then
            procmgmt_fast=$((procmgmt_fast - 1))
            if sleep 0.01 2>/dev/null; then
                [ "$procmgmt_fast" -gt 0 ] || procmgmt_left=$((procmgmt_left - 1))
                continue
            fi
            procmgmt_fast=0
        fi
        if sleep 0.1 2>/dev/null; then
            procmgmt_left=$((procmgmt_left - 1))
        else
            sleep 1
            procmgmt_left=$((procmgmt_left - 10))
        fi
    done
}

# procmgmt_stat PID: set procmgmt_state and procmgmt_pgrp from /proc (Linux).
# The command name may contain spaces and parentheses, so the fields are
# taken after the last ")". The builtin read costs no fork; only a command
# name with a line break in it needs cat.
procmgmt_stat() {
    procmgmt_state=
    procmgmt_pgrp=
    [ -r "/proc/$1/stat" ] || return 1
    { read -r procmgmt_line <"/proc/$1/stat"; } 2>/dev/null || return 1
    case "$procmgmt_line" in
        *") "*) ;;
        *) procmgmt_line=$(cat "/proc/$1/stat" 2>/dev/null) || return 1 ;;
    esac
    [ -n "$procmgmt_line" ] || return 1
    procmgmt_line=${procmgmt_line##*") "}
    read -r procmgmt_state procmgmt_ppid procmgmt_pgrp procmgmt_rest <<EOF
$procmgmt_line
EOF
    : "$procmgmt_ppid" "$procmgmt_rest"
}

# procmgmt_alive PID: the process exists and is not a zombie (a zombie
# still answers kill -0 until its parent, often init, reaps it).
procmgmt_alive() {
    if procmgmt_stat "$1"; then
        [ "$procmgmt_state" != Z ]
    else
        kill -s 0 "$1" 2>/dev/null
    fi
}

# procmgmt_refuse REASON: say once per pid why it is not trusted.
procmgmt_refuse() {
    [ "$procmgmt_refused" != "$procmgmt_pid" ] || return 0
    procmgmt_refused=$procmgmt_pid
    procmgmt_command=$(ps -o args= -p "$procmgmt_pid" 2>/dev/null) || :
    echo "$procmgmt_name: warning: not trusting $procmgmt_pidfile: pid $procmgmt_pid" \
        "$1 (command: $procmgmt_command); not signalling it, counting" \
        "$procmgmt_name as not running" >&2
}

# procmgmt_trusted: procmgmt_pid may be signalled. Never PID 1, this script or
# its parent; and when the process runs as a user of its own, who can write
# its pid file, only a process of that user.
procmgmt_trusted() {
    case "$procmgmt_pid" in
        1 | "$$" | "$PPID")
            procmgmt_refuse "is PID 1, this script or its caller"
            return 1
            ;;
    esac
    [ -n "$procmgmt_user" ] || return 0
    if [ -z "$procmgmt_uid" ]; then
        procmgmt_uid=$(id -u "$procmgmt_user" 2>/dev/null) || procmgmt_uid=
    fi
    if [ -n "$procmgmt_uid" ] && procmgmt_pid_owned "$procmgmt_pid" "$procmgmt_uid"; then
        return 0
    fi
    procmgmt_pid_owner=$procmgmt_owner
    # su (the fallback user switch) stays as a root parent.
    if [ "$procmgmt_pid_owner" = 0 ] && [ -n "$procmgmt_uid" ] &&
        procmgmt_child_owned "$procmgmt_pid" "$procmgmt_uid"; then
        return 0
    fi
    procmgmt_refuse "belongs to uid ${procmgmt_pid_owner:-unknown}, not to $procmgmt_user"
    return 1
}

# procmgmt_child_owned PID UID: a child of PID runs as UID (Linux /proc).
procmgmt_child_owned() {
    for procmgmt_entry in /proc/[0-9]*; do
        procmgmt_stat "${procmgmt_entry#/proc/}" || continue
        [ "$procmgmt_ppid" = "$1" ] || continue
        procmgmt_pid_owned "${procmgmt_entry#/proc/}" "$2" && return 0
    done
    return 1
}

# procmgmt_running: the pid file (no symlink) names a live, trusted process;
# sets procmgmt_pid.
procmgmt_running() {
    procmgmt_pid=
    if [ -L "$procmgmt_pidfile" ]; then
        if [ "$procmgmt_refused" != symlink ]; then
            procmgmt_refused=symlink
            echo "$procmgmt_name: warning: not trusting $procmgmt_pidfile: it is a symlink" >&2
        fi
        return 1
    fi
    [ -r "$procmgmt_pidfile" ] || return 1
    read -r procmgmt_pid 2>/dev/null <"$procmgmt_pidfile"
    case "$procmgmt_pid" in
        '' | 0* | 1 | *[!0-9]*) return 1 ;;
    esac
    procmgmt_alive "$procmgmt_pid" && procmgmt_trusted
}


procmgmt_exited() {
    ! procmgmt_alive "$procmgmt_pid"
}

# procmgmt_pgid PID: set procmgmt_pgrp to the process group of PID (a
# variable, not output: a command substitution would cost a fork).
procmgmt_pgid() {
    procmgmt_stat "$1" ||
        procmgmt_pgrp=$(ps -o pgid= -p "$1" 2>/dev/null | tr -d ' ')
}

procmgmt_stop() {
    if ! procmgmt_running; then
        rm -f "$procmgmt_pidfile"
        echo "$procmgmt_name is not running"
        return 0
    fi
    # A pid that leads its own process group (started by our daemonizer
    # with setsid, or a daemon that called setsid itself) is signalled as a
    # group, so wrappers and children go too; otherwise only the pid.
    procmgmt_target=$procmgmt_pid
    procmgmt_pgid "$procmgmt_pid"
    if [ "$procmgmt_pgrp" = "$procmgmt_pid" ]; then
        procmgmt_target=-$procmgmt_pid
    fi
    echo "Stopping $procmgmt_name (pid $procmgmt_pid)"
    kill -s "$procmgmt_stop_signal" -- "$procmgmt_target" 2>/dev/null
    if ! procmgmt_poll $((procmgmt_stop_timeout * 10)) procmgmt_exited; then
        echo "$procmgmt_name did not stop within $procmgmt_stop_timeout s; sending SIGKILL" >&2
        kill -s KILL -- "$procmgmt_target" 2>/dev/null
        if ! procmgmt_poll 50 procmgmt_exited; then
            echo "$procmgmt_name: pid $procmgmt_pid survived SIGKILL" >&2
            return 1
        fi
    fi
    rm -f "$procmgmt_pidfile"
    echo "$procmgmt_name stopped"
}

procmgmt_reload() {
    if ! procmgmt_running; then
        echo "$procmgmt_name is not running" >&2
        return 7
    fi
    kill -s "$procmgmt_reload_signal" "$procmgmt_pid"
}

# LSB status: 0 running, 3 not running.
procmgmt_status() {
    if procmgmt_running; then
        echo "$procmgmt_name is running (pid $procmgmt_pid)"
        return 0
    fi
    echo "$procmgmt_name is not running"
    return 3
}
"""

_START_HEAD = r"""procmgmt_start() {
    if procmgmt_running; then
        echo "$procmgmt_name is already running (pid $procmgmt_pid)"
        return 0
    fi
    if [ -n "$procmgmt_piddir" ]; then
        procmgmt_make_piddir "$procmgmt_piddir" "$procmgmt_user" || return 1
    fi
    # A stale pid file goes (tested first: rm is a fork, and usually there is none).
    if [ -e "$procmgmt_pidfile" ] || [ -L "$procmgmt_pidfile" ]; then
        rm -f "$procmgmt_pidfile"
    fi
    if ! procmgmt_initialize; then
        echo "$procmgmt_name: initialize failed" >&2
        return 1
    fi
"""

_START_DAEMON = r"""    echo "Starting $procmgmt_name"
    # The daemon forks and writes its own pid file.
    procmgmt_rc=0
    "$@" </dev/null || procmgmt_rc=$?
    if [ "$procmgmt_rc" -ne 0 ]; then
        echo "$procmgmt_name: the daemon failed to start (exit status $procmgmt_rc)" >&2
        return 1
    fi
    if ! procmgmt_poll $((procmgmt_start_timeout * 10)) procmgmt_running; then
        echo "$procmgmt_name: no live process in $procmgmt_pidfile" \
            "after $procmgmt_start_timeout s" >&2
        return 1
    fi
    echo "$procmgmt_name started (pid $procmgmt_pid)"
"""

_START_FOREGROUND = r"""    # Check the pid and log files first: a process started without them
    # could not be stopped or diagnosed. Where another user can write, a
    # symlink would make root write wherever it points: it is refused, and
    # the pid file is created exclusively (set -C: O_EXCL).
    if [ -L "$procmgmt_logfile" ]; then
        echo "$procmgmt_name: the log file $procmgmt_logfile is a symlink;" \
            "refusing to write through it (remove it)" >&2
        return 1
    fi
    if ! (set -C && true >"$procmgmt_pidfile") 2>/dev/null; then
        echo "$procmgmt_name: cannot create the pid file $procmgmt_pidfile" >&2
        return 1
    fi
    rm -f "$procmgmt_pidfile"
    if ! true 2>/dev/null >>"$procmgmt_logfile"; then
        echo "$procmgmt_name: cannot write the log file $procmgmt_logfile" >&2
        return 1
    fi
    echo "Starting $procmgmt_name"
    # Daemonize the foreground process: its own session (so stop can signal
    # the whole process group), no terminal input, output to the log file.
    if command -v setsid >/dev/null 2>&1; then
        set -- setsid "$@"
    fi
    "$@" </dev/null >>"$procmgmt_logfile" 2>&1 &
    procmgmt_pid=$!
    if ! (set -C && echo "$procmgmt_pid" >"$procmgmt_pidfile") 2>/dev/null; then
        echo "$procmgmt_name: $procmgmt_pidfile appeared while starting; stopping" \
            "pid $procmgmt_pid again" >&2
        kill -s KILL "$procmgmt_pid" 2>/dev/null
        return 1
    fi
    # A process that dies at once (bad arguments, port taken) fails the start.
    if procmgmt_poll "$procmgmt_start_grace" procmgmt_exited; then
        rm -f "$procmgmt_pidfile"
        echo "$procmgmt_name: exited right after starting; end of $procmgmt_logfile:" >&2
        tail -n 5 "$procmgmt_logfile" >&2
        return 1
    fi
    echo "$procmgmt_name started (pid $procmgmt_pid)"
"""

# Keeps the caller's environment: setpriv changes only the credentials; su
# (without -l) keeps everything but HOME, SHELL, USER and LOGNAME.
_USER_SWITCH = """    # Run as {user_text} (initialize above ran as the caller, i.e. root).
    if command -v setpriv >/dev/null 2>&1; then
        set -- setpriv --reuid={user} --regid="$(id -g {user})" --init-groups -- "$@"
    else
        # The single quotes are meant: su's shell expands "$0" "$@".
        # shellcheck disable=SC2016
        set -- su -s /bin/sh -c 'exec "$0" "$@"' {user} -- "$@"
    fi
"""


class SysVInitBackend(Backend):
    """LSB init scripts in ``etc/rc.d/init.d`` with ``rcN.d`` S/K links."""

    name = "sysvinit"
    capabilities = Capabilities(
        prefers="daemon",
        dependencies="native",
        ordering="rcN.d S/K sequence numbers, LSB Should-Start",
        user_switching=True,
        user_mode=True,
        tested="run",
        readiness="emulated",
        notes="self-contained POSIX sh scripts; foreground processes are daemonized "
              "by the script (setsid, log file, pid file); readiness: start returns once "
              "the declared check passes (generated sh probes; Notify only by the engine)",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The native model of one init script.

        Keys: name, description, provides, required_start/required_stop,
        should_start/should_stop (dependency names), runlevels (None, or a
        list that sets Default-Start and makes Default-Stop the rest),
        supported_runlevels, default_start/default_stop, sequence,
        kill_sequence, umask, path (prepended to PATH), environment,
        directory, nice, user, initialize, mode ("daemon" or "foreground"),
        command (argv), pid_file, pid_dir (the process's own pid directory
        that start creates, or None), log_file, directories ([path, octal mode]
        pairs start creates after initialize when missing), reload_signal,
        stop_signal (what stop sends first; SIGKILL follows after stop_timeout),
        start_timeout,
        stop_timeout, start_grace, readiness (the declaration as JSON, or None:
        start waits for it), activities (name -> raw shell body) and
        remove_activities.
        """
        settings = ctx.settings
        if spec.daemon:
            mode, command = "daemon", [spec.daemon, *spec.daemon_args]
        elif spec.foreground:
            mode, command = "foreground", [spec.foreground, *spec.foreground_args]
        else:
            raise ValueError(f"{spec.name}: neither a daemon nor a foreground process to run")
        deps = list(spec.dependencies)
        return {
            "name": spec.name,
            "description": spec.description,
            "provides": [spec.name],
            "required_start": [],
            "required_stop": [],
            "should_start": deps,
            "should_stop": list(deps),
            "runlevels": None,
            "supported_runlevels": list(SUPPORTED_RUNLEVELS),
            "default_start": list(DEFAULT_START),
            "default_stop": list(DEFAULT_STOP),
            "sequence": spec.rank,
            "kill_sequence": MAX_SEQUENCE - spec.rank + MIN_SEQUENCE,
            "umask": spec.umask,
            "path": spec.path_value(),
            "environment": dict(spec.environment),
            "directory": spec.directory,
            "nice": spec.nice,
            "user": spec.effective_user(settings),
            "initialize": spec.initialize,
            "mode": mode,
            "command": command,
            "pid_file": spec.derived_pid_file(settings),
            "pid_dir": spec.own_pid_dir(settings),
            "log_file": spec.log_file(settings),
            # What start creates when missing (a fresh state dir, generated files
            # run without procmgmt): the pid file's and the log file's directories
            # (an own pid directory is procmgmt_make_piddir's, owned by the user).
            "directories": _directories(
                settings,
                ([] if spec.own_pid_dir(settings) else [spec.derived_pid_file(settings)])
                + ([spec.log_file(settings)] if mode == "foreground" else [])),
            "reload_signal": "HUP",
            "stop_signal": spec.stop_signal,
            "start_timeout": DEFAULT_START_TIMEOUT,
            "stop_timeout": DEFAULT_STOP_TIMEOUT,
            "start_grace": DEFAULT_START_GRACE,
            "readiness": (spec.readiness.to_json()
                          if isinstance(spec.readiness, rd.Readiness) else None),
            "activities": {
                "start": "procmgmt_start",
                "stop": "procmgmt_stop",
                "reload": "procmgmt_reload",
                "restart": "procmgmt_stop && procmgmt_start",
                "status": "procmgmt_status",
            },
            "remove_activities": [],
        }

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The init script (0755) and its rcN.d links."""
        name = str(native["name"])
        start_levels, stop_levels = runlevels_of(native)
        sequence = _sequence(native, "sequence")
        kill_sequence = _sequence(native, "kill_sequence")
        script = f"etc/rc.d/init.d/{name}"
        files = [File(script, render_script(native), mode=0o755)]
        files += [File(f"etc/rc.d/rc{level}.d/S{sequence:02d}{name}", symlink=f"../init.d/{name}")
                  for level in start_levels]
        files += [File(f"etc/rc.d/rc{level}.d/K{kill_sequence:02d}{name}",
                       symlink=f"../init.d/{name}")
                  for level in stop_levels]
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Script path, sequence, pid file and timeouts, for the activator."""
        return {
            "script": f"etc/rc.d/init.d/{native['name']}",
            "sequence": _sequence(native, "sequence"),
            "mode": native.get("mode"),
            "pid_file": native.get("pid_file"),
            "log_file": native.get("log_file"),
            "start_timeout": _number(native, "start_timeout", DEFAULT_START_TIMEOUT),
            "stop_timeout": _number(native, "stop_timeout", DEFAULT_STOP_TIMEOUT),
            "stop_signal": _signal_name(native, "stop_signal", "TERM"),
            # The stop activity is the generated one: the activator may do the
            # same steps itself (no shell per process) when it stops many.
            "native_stop": (native.get("activities") or {}).get("stop") == "procmgmt_stop"
            and "stop" not in (native.get("remove_activities") or []),
        }

    def validate(self, specs: Sequence[ProcessSpec],
                 ctx: BuildContext) -> list[tuple[str, str, str]]:
        """A dependency chain deeper than the two-digit sequence numbers allow; a
        readiness declaration the generated sh check cannot express."""
        return [
            (spec.name, "dependencies",
             f"dependency chain is {spec.rank + 1} levels deep; init script sequence "
             f"numbers are two digits ({MIN_SEQUENCE}-{MAX_SEQUENCE})")
            for spec in specs
            if spec.rank + MIN_SEQUENCE > MAX_SEQUENCE
        ] + [row for spec in specs for row in _ready_sh.spec_problems(spec)]

    def activator(self, settings: Settings) -> Activator:
        """Runs the scripts directly: no init system is involved."""
        return SysVInitActivator(settings)


def runlevels_of(native: dict[str, Any]) -> tuple[list[int], list[int]]:
    """(start levels, stop levels): ``runlevels`` if given, else the defaults."""
    supported = _levels(native.get("supported_runlevels", SUPPORTED_RUNLEVELS),
                        "supported_runlevels")
    runlevels = native.get("runlevels")
    if runlevels is not None:
        wanted = set(_levels(runlevels, "runlevels"))
        start = [lv for lv in supported if lv in wanted]
        return start, [lv for lv in supported if lv not in wanted]
    return (_levels(native.get("default_start", ()), "default_start"),
            _levels(native.get("default_stop", ()), "default_stop"))


def _levels(value: Any, key: str) -> list[int]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{key} must be a list of runlevels, got {value!r}")
    levels = set()
    for item in value:
        if not re.fullmatch(r"[0-9]", str(item)):
            raise ValueError(f"{key}: {item!r} is not a runlevel (0-9)")
        levels.add(int(str(item)))
    return sorted(levels)


def _sequence(native: dict[str, Any], key: str) -> int:
    value = native.get(key)
    if not isinstance(value, int) or isinstance(value, bool) \
            or not MIN_SEQUENCE <= value <= MAX_SEQUENCE:
        raise ValueError(f"{key} must be an integer {MIN_SEQUENCE}-{MAX_SEQUENCE}, got {value!r}")
    return value


def _number(native: dict[str, Any], key: str, default: float) -> float:
    value = native.get(key, default)
    if value is None:
        value = default
    problem = seconds_problem(value, zero_ok=True)
    if problem:
        raise ValueError(f"{key} {problem}")
    return value  # type: ignore[no-any-return]


def _names(native: dict[str, Any], key: str) -> list[str]:
    value = native.get(key) or []
    if isinstance(value, str):
        value = [value]
    names = [str(v) for v in value]
    for n in names:
        if not n or any(c.isspace() for c in n):
            raise ValueError(f"{key}: {n!r} is not a facility name")
    return names


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _activities(native: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, body) in ``case`` order: standard ones first, the others sorted."""
    activities = dict(native.get("activities") or {})
    for removed in native.get("remove_activities") or []:
        activities.pop(removed, None)
    for act, body in activities.items():
        if not _ACTIVITY_NAME.match(str(act)):
            raise ValueError(f"activities: {act!r} is not a valid activity name")
        if not isinstance(body, str) or not body.strip():
            raise ValueError(f"activities.{act}: expected a non-empty shell snippet")
    standard = [a for a in STANDARD_ACTIVITIES if a in activities]
    others = sorted(a for a in activities if a not in STANDARD_ACTIVITIES)
    return [(a, activities[a]) for a in standard + others]


def _body(text: str, indent: str) -> list[str]:
    """Shell lines of a snippet. A one-line snippet is indented; a longer one
    is kept verbatim, since indenting could change here-documents and
    multi-line quoted strings."""
    text = text.strip("\n")
    if "\n" not in text:
        return [indent + text.strip()]
    return text.split("\n")


def render_script(native: dict[str, Any]) -> str:
    """The init script text, from the native model only."""
    name = str(native["name"])
    description = _one_line(native.get("description") or name)
    mode = native.get("mode")
    if mode not in ("daemon", "foreground"):
        raise ValueError(f"mode must be 'daemon' or 'foreground', got {mode!r}")
    command = native.get("command")
    if not isinstance(command, list) or not command or not all(
            isinstance(a, str) for a in command):
        raise ValueError(f"command must be a non-empty list of strings, got {command!r}")
    start_levels, stop_levels = runlevels_of(native)
    signal = _signal_name(native, "reload_signal", "HUP")
    stop_signal = _signal_name(native, "stop_signal", "TERM")
    environment = native.get("environment") or {}
    if not isinstance(environment, dict):
        raise ValueError("environment must be a dict of names to values")
    for var in environment:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(var)):
            raise ValueError(f"environment: {var!r} is not a valid variable name")
    activities = _activities(native)
    raw = native.get("readiness")
    check = raw if isinstance(raw, rd.Readiness) else rd.from_json(raw)

    def header(field: str, values: Iterable[Any]) -> str:
        text = " ".join(str(v) for v in values)
        return f"# {field + ':':<18} {text}".rstrip()

    lines = [
        "#!/bin/sh",
        "### BEGIN INIT INFO",
        header("Provides", _names(native, "provides") or [name]),
        header("Required-Start", _names(native, "required_start")),
        header("Required-Stop", _names(native, "required_stop")),
        header("Should-Start", _names(native, "should_start")),
        header("Should-Stop", _names(native, "should_stop")),
        header("Default-Start", start_levels),
        header("Default-Stop", stop_levels),
        header("Short-Description", [description]),
        header("Description", [description]),
        "### END INIT INFO",
        "#",
        "# Generated by procmgmt (sysvinit backend). Plain POSIX sh: needs no init",
        "# system, no /lib/lsb/init-functions and no procmgmt at run time.",
        "",
    ]
    umask = native.get("umask")
    if umask is not None:
        umask_text = str(umask)
        if not re.fullmatch(r"[0-7]{1,4}", umask_text):
            raise ValueError(f"umask: {umask!r} is not an octal umask")
        lines.append(f"umask {umask_text}")
    path = native.get("path")
    prefix = f"{quote(str(path))}:" if path else ""
    lines.append(f'PATH={prefix}"${{PATH:-{SYSTEM_PATH}}}"; export PATH')
    env = {str(k): str(v) for k, v in environment.items()}
    if any(c in v for v in env.values() for c in "$`\\\"'"):
        # Single-quoted values are literal on purpose; shellcheck would
        # suggest expanding them. The group only scopes the directive.
        lines += ["# shellcheck disable=SC1003,SC2016,SC2089,SC2090", "{", *export_lines(env), "}"]
    else:
        lines += export_lines(env)
    lines += [
        "",
        f"procmgmt_name={quote(name)}",
        f"procmgmt_pidfile={quote(str(native['pid_file']))}",
        # Whose process the pid file must name (empty: the caller's, unchecked).
        f"procmgmt_user={quote(str(native.get('user') or ''))}",
        f"procmgmt_piddir={quote(str(native.get('pid_dir') or ''))}",
        "procmgmt_uid=",
        "procmgmt_refused=",
    ]
    if mode == "foreground":
        lines.append(f"procmgmt_logfile={quote(str(native['log_file']))}")
        grace = _number(native, "start_grace", DEFAULT_START_GRACE)
        lines.append(f"procmgmt_start_grace=${{PROCMGMT_START_GRACE:-{round(grace * 10)}}}"
                     "  # tenths of a second")
        # procmgmt's engine watches the process itself after start (readiness, or
        # a grace time for all processes at once) and sets PROCMGMT_START_GRACE=0.
        lines.append('case "$procmgmt_start_grace" in')
        lines.append(f"    '' | *[!0-9]*) procmgmt_start_grace={round(grace * 10)} ;;")
        lines.append("esac")
    else:
        lines.append("procmgmt_start_timeout="
                     f"{_int_seconds(native, 'start_timeout', DEFAULT_START_TIMEOUT)}")
    lines += [
        f"procmgmt_stop_timeout={_int_seconds(native, 'stop_timeout', DEFAULT_STOP_TIMEOUT)}",
        f"procmgmt_reload_signal={signal}",
        f"procmgmt_stop_signal={stop_signal}",
        "",
        _HELPERS.rstrip("\n"),
        "",
        *([_ready_sh.library([check]).rstrip("\n"), ""]
          if check is not None and _ready_sh.checkable(check) else []),
        "# Runs before the process starts, as the invoking user (root when privileged).",
        "procmgmt_initialize() {",
    ]
    initialize = str(native.get("initialize") or "").strip("\n")
    lines += _body(initialize, "    ") if initialize.strip() else ["    :"]
    lines += ["}", "", _START_HEAD.rstrip("\n")]
    lines += _mkdir_lines(native.get("directories") or [])
    directory = native.get("directory")
    if directory:
        lines.append(f"    cd {quote(str(directory))} || return 1")
    lines.append(f"    set -- {command_line(command)}")
    user = native.get("user")
    if user:
        lines.append(_USER_SWITCH.format(user=quote(str(user)),
                                         user_text=_one_line(str(user))).rstrip("\n"))
    nice = native.get("nice")
    if nice is not None:
        if not isinstance(nice, int) or isinstance(nice, bool):
            raise ValueError(f"nice must be an integer, got {nice!r}")
        lines.append(f'    set -- nice -n {nice} "$@"')
    if isinstance(check, rd.LogLine):
        lines.append("    # Only log lines written after this size count as ready.")
        lines += ["    " + line for line in _ready_sh.offset_lines(check)]
    lines.append((_START_DAEMON if mode == "daemon" else _START_FOREGROUND).rstrip("\n"))
    lines += _ready_wait_lines(name, check, str(native["pid_file"]))
    lines.append("}")
    usage = "|".join(a for a, _ in activities)
    lines += ["", 'case "$1" in']
    for act, body in activities:
        lines.append(f"    {act})")
        lines += _body(body, "        ")
        lines.append("        ;;")
    lines += [
        "    *)",
        f'        echo "Usage: $0 {{{usage}}}" >&2',
        "        exit 1",
        "        ;;",
        "esac",
        "",
    ]
    return "\n".join(lines)


def _ready_wait_lines(name: str, check: rd.Readiness | None, pid_file: str) -> list[str]:
    """The end of ``procmgmt_start``: wait until the declared check passes; on
    timeout stop the process again and fail (as systemd does when ExecStartPost=
    fails), so a start never leaves a process that is running but not ready."""
    if check is None:
        return []
    if not _ready_sh.checkable(check):
        return [f"    # Readiness ({check.describe()}) cannot be checked from sh: procmgmt's",
                "    # engine waits for it during a switch; this script does not."]
    wait = _ready_sh.wait_lines(name, check, pid_file=pid_file,
                                offset='"$procmgmt_ready_offset"', indent="        ")
    return [
        f"    # Ready means: {' '.join(check.describe().split())}. procmgmt's engine probes",
        f"    # that itself and sets {_ready_sh.READY_WAIT_ENV}=0.",
        f'    if [ "${{{_ready_sh.READY_WAIT_ENV}:-1}}" != 0 ]; then',
        "        procmgmt_ready_rc=0",
        *wait[:-1],
        wait[-1] + " || procmgmt_ready_rc=$?",
        '        if [ "$procmgmt_ready_rc" -ne 0 ]; then',
        '            echo "$procmgmt_name: stopping it again: it did not become ready" >&2',
        "            procmgmt_stop >&2",
        "            return 1",
        "        fi",
        '        echo "$procmgmt_name is ready"',
        "    fi",
    ]


def _directories(settings: Settings, files: list[str]) -> list[list[str]]:
    """[directory, mode] of each file's directory, with procmgmt's mode for it."""
    dirs = dict.fromkeys(os.path.dirname(f) for f in files)
    return [[d, f"{directory_mode(settings, d):04o}"] for d in dirs if d and d != "/"]


def _mkdir_lines(directories: Any) -> list[str]:
    """Lines of ``procmgmt_start`` that create each missing directory: parents
    with umask 022, the directory itself then given its mode explicitly. An
    existing directory is left as it is (as by ``procmgmt init-state``)."""
    lines: list[str] = []
    for entry in directories:
        if not isinstance(entry, list | tuple) or len(entry) != 2:
            raise ValueError(f"directories: expected [path, mode] pairs, got {entry!r}")
        path, mode = str(entry[0]), str(entry[1])
        if not path.startswith("/") or not re.fullmatch(r"[0-7]{3,4}", mode):
            raise ValueError(f"directories: {entry!r} is not [absolute path, octal mode]")
        q = quote(path)
        lines += [
            f"    if [ ! -d {q} ]; then",
            f"        if ! (umask 022 && mkdir -p {q} && chmod {mode} {q}); then",
            f'            echo "$procmgmt_name: cannot create the directory {_msg(path)}" >&2',
            "            return 1",
            "        fi",
            "    fi",
        ]
    return lines


def _signal_name(native: dict[str, Any], key: str, default: str) -> str:
    """A signal name of the native model without ``SIG`` (``-INT``, ``SIGINT`` -> ``INT``)."""
    name = str(native.get(key) or default).removeprefix("-").removeprefix("SIG")
    if not _SIGNAL_NAME.match(name):
        raise ValueError(f"{key}: {name!r} is not a signal name")
    return name


def _int_seconds(native: dict[str, Any], key: str, default: int) -> int:
    value = _number(native, key, default)
    if value != int(value):
        raise ValueError(f"{key} must be whole seconds, got {value!r}")
    return int(value)


def _output_file() -> IO[bytes]:
    """An anonymous file for a script's output: in memory (``memfd``) on Linux,
    so starting a thousand scripts creates no thousand files in the tmp dir."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            return open(memfd_create("procmgmt-script", getattr(os, "MFD_CLOEXEC", 1)), "w+b")
        except OSError:
            pass
    return tempfile.TemporaryFile(mode="w+b")


def _remove(path: str) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _signal(target: int, sig: int) -> None:
    """Signal a pid (or, negative, a process group); gone already is fine."""
    with contextlib.suppress(ProcessLookupError):
        if target < 0:
            os.killpg(-target, sig)
        else:
            os.kill(target, sig)


class SysVInitActivator(Activator):
    """Runs the generated scripts directly: ``<store path>/<script> start|stop|...``."""

    #: Each call runs its own script in its own subprocess: safe to run in parallel.
    parallel_safe = True

    def _script(self, proc: DeployedProcess) -> str:
        rel = proc.extra.get("script") or f"etc/rc.d/init.d/{proc.name}"
        return os.path.join(proc.path, str(rel))

    def _timeout(self, proc: DeployedProcess, key: str, default: float) -> float:
        value = proc.extra.get(key, default)
        return float(value if isinstance(value, int | float) else default) + ACTIVATOR_SLACK

    def _run(self, proc: DeployedProcess, activity: str, timeout: float,
             env: dict[str, str] | None = None) -> None:
        script = self._script(proc)
        # Output goes to a file, not a pipe: a daemon that keeps the script's
        # stdout open would otherwise make us wait for it forever.
        with _output_file() as out:
            try:
                rc = subprocess.run([script, activity], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=timeout,
                                    env=None if env is None else {**os.environ, **env},
                                    umask=fsutil.SERVICE_UMASK, check=False).returncode
            except subprocess.TimeoutExpired:
                rc = None
            except OSError as exc:
                raise DeployError(f"{proc.name}: cannot run {script} {activity}: {exc}") from None
            out.seek(0)
            output = out.read().decode(errors="replace")
        if rc == 0:
            return
        what = (f"did not finish within {timeout:.0f} s" if rc is None
                else f"failed with exit status {rc}")
        tail = _activation.tail(output)
        raise DeployError(f"{proc.name}: '{script} {activity}' {what}"
                          + (f":\n{tail}" if tail else ""))

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """``<script> start``; DeployError with the script's last output lines on failure.

        The script's own crash grace and readiness wait are turned off: the engine
        watches every started process concurrently (readiness check or grace time)
        instead of spending that time inside each script, one after another."""
        self._run(proc, "start", self._timeout(proc, "start_timeout", DEFAULT_START_TIMEOUT),
                  env={"PROCMGMT_START_GRACE": "0", _ready_sh.READY_WAIT_ENV: "0"})

    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Stop ``proc`` (of its own generation).

        With the generated stop activity, the activator takes its steps itself
        (the stop signal to the process group the script would signal, SIGKILL after
        ``stop_timeout``, pid file removed) and returns a probe for the
        engine, so stopping a thousand processes costs no shell each and no
        worker waits. An overridden stop activity runs through the script.
        """
        if not proc.extra.get("native_stop"):
            # Stop waits up to stop_timeout for SIGTERM, then up to 5 s after SIGKILL.
            self._run(proc, "stop",
                      self._timeout(proc, "stop_timeout", DEFAULT_STOP_TIMEOUT) + 5)
            return None
        pid_file = str(proc.extra.get("pid_file") or proc.pid_file or "")
        verdict = pid_verdict(proc, self.settings, whole_line=True)
        if verdict.refused:
            return None  # reported; the pid file stays as evidence
        pid = verdict.pid
        if pid is None or not verdict.trusted:
            _remove(pid_file)
            return None
        try:
            target = -pid if os.getpgid(pid) == pid else pid
        except ProcessLookupError:
            _remove(pid_file)
            return None
        stop_signal = getattr(signal, f"SIG{proc.extra.get('stop_signal') or 'TERM'}",
                              signal.SIGTERM)
        _signal(target, stop_signal)
        timeout = float(proc.extra.get("stop_timeout") or DEFAULT_STOP_TIMEOUT)
        began = time.monotonic()
        killed: list[float] = []

        def probe() -> bool:
            if not pid_alive(pid):
                _remove(pid_file)
                return True
            now = time.monotonic()
            if not killed and now - began > timeout:
                _signal(target, signal.SIGKILL)
                killed.append(now)
            elif killed and now - killed[0] > 5:
                raise DeployError(f"{proc.name}: pid {pid} survived SIGKILL")
            return False

        return None if probe() else probe

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """Read the pid file here: no fork per process, cheap for ``status`` of many;
        the whole first line, as the script's ``read -r`` reads it."""
        return pid_file_status(proc, self.settings, whole_line=True)

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """Any activity through the script itself; its output goes to our stdout."""
        script = self._script(proc)
        try:
            return subprocess.run([script, activity], stdin=subprocess.DEVNULL,
                                  umask=fsutil.SERVICE_UMASK, check=False).returncode
        except OSError as exc:
            raise DeployError(f"{proc.name}: cannot run {script} {activity}: {exc}") from None
