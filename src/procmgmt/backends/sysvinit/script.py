"""The text of a sysvinit init script, rendered from the native model only.

Every script is plain POSIX ``sh`` carrying its own small helpers, so it runs
anywhere: under a real sysvinit, under ``dash`` from a container entry point,
or by an unprivileged user straight from the store. No init system, no
/lib/lsb/init-functions and no procmgmt installation are needed at run time.

The static shell (helpers, the parts of ``procmgmt_start``) lives in this
package's ``.sh`` files; this module writes only what varies per process:
the LSB header, the variables the helpers read, the command line and the
``case`` of activities. Since it reads nothing but the native model, a user
override can change anything the script does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends._shell import (
    MAKE_PIDDIR_SH,
    PID_OWNED_SH,
    PROCESS_WAIT_SH,
    command_line,
    export_lines,
    quote,
    shell_file,
)
from procmgmt.backends._shell import in_double_quotes as _msg
from procmgmt.backends.shared import liveness, ready
from procmgmt.backends.shared.logrotation import rotation_of
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.numbers import seconds_problem

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

_ACTIVITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_SIGNAL_NAME = re.compile(r"^[A-Z][A-Z0-9+-]*\Z")


#: The helpers every script carries (helpers.sh says what they need).
HELPERS_SH = (PID_OWNED_SH + "\n" + MAKE_PIDDIR_SH + PROCESS_WAIT_SH + "\n"
              + shell_file("procmgmt.backends.sysvinit", "helpers.sh"))
#: ``procmgmt_start`` up to initialize; then the process's command is set up and
#: one of the two endings follows, by mode.
START_HEAD_SH = shell_file("procmgmt.backends.sysvinit", "start_head.sh")
START_DAEMON_SH = shell_file("procmgmt.backends.sysvinit", "start_daemon.sh")
START_FOREGROUND_SH = shell_file("procmgmt.backends.sysvinit", "start_foreground.sh")
SPAWN_APPEND_SH = shell_file("procmgmt.backends.sysvinit", "spawn_append.sh")
SPAWN_ROTATING_SH = shell_file("procmgmt.backends.sysvinit", "spawn_rotating.sh")
START_FOREGROUND_TAIL_SH = shell_file("procmgmt.backends.sysvinit", "start_foreground_tail.sh")
#: The loop that restarts a process (restart "on-failure", "always"): ``sh -c`` text.
SUPERVISE_SH = shell_file("procmgmt.backends.sysvinit", "supervise.sh")
LOG_WRITER_SH = shell_file("procmgmt.backends", "sh/log_writer.sh")


def _user_switch_lines(user: str) -> list[str]:
    """Lines of ``procmgmt_start`` that run the command as ``user``.

    The caller's environment is kept: setpriv changes only the credentials;
    su (without -l) keeps everything but HOME, SHELL, USER and LOGNAME. The
    user name is part of the command words here (not a variable the script
    reads), so these lines are written per process rather than kept in a
    ``.sh`` file.
    """
    q = quote(user)
    return [
        f"    # Run as {_one_line(user)} (initialize above ran as the caller, i.e. root).",
        "    if command -v setpriv >/dev/null 2>&1; then",
        f'        set -- setpriv --reuid={q} --regid="$(id -g {q})" --init-groups -- "$@"',
        "    else",
        '        # The single quotes are meant: su\'s shell expands "$0" "$@".',
        "        # shellcheck disable=SC2016",
        f"""        set -- su -s /bin/sh -c 'exec "$0" "$@"' {q} -- "$@\"""",
        "    fi",
    ]


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


def sequence_of(native: dict[str, Any], key: str) -> int:
    """The two-digit S/K sequence number under ``key``; ValueError otherwise."""
    value = native.get(key)
    if not isinstance(value, int) or isinstance(value, bool) \
            or not MIN_SEQUENCE <= value <= MAX_SEQUENCE:
        raise ValueError(f"{key} must be an integer {MIN_SEQUENCE}-{MAX_SEQUENCE}, got {value!r}")
    return value


def seconds_of(native: dict[str, Any], key: str, default: float) -> float:
    """A duration in seconds under ``key`` (``default`` when absent or None)."""
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
    signal = signal_of(native, "reload_signal", "HUP")
    stop_signal = signal_of(native, "stop_signal", "TERM")
    environment = native.get("environment") or {}
    if not isinstance(environment, dict):
        raise ValueError("environment must be a dict of names to values")
    for var in environment:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(var)):
            raise ValueError(f"environment: {var!r} is not a valid variable name")
    activities = _activities(native)
    raw = native.get("readiness")
    check = raw if isinstance(raw, rd.Readiness) else rd.from_json(raw)
    live = liveness.of(native.get("liveness"))
    if live is not None and mode != "foreground":
        raise ValueError("liveness needs mode 'foreground' (the watcher starts beside "
                         "the program the script runs)")

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
    rotation = rotation_of(native) if mode == "foreground" else None
    if mode == "foreground":
        lines.append(f"procmgmt_logfile={quote(str(native['log_file']))}")
        if rotation is not None:
            lines += [f"procmgmt_log_max_bytes={rotation[0]}",
                      f"procmgmt_log_backups={rotation[1]}"]
        grace = seconds_of(native, "start_grace", DEFAULT_START_GRACE)
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
        *(["# The restart loop's text (supervise.sh), run by sh -c: literal on purpose.",
            "# shellcheck disable=SC2016",
            f"procmgmt_supervisor={quote(SUPERVISE_SH)}"]
          if mode == "foreground" and native.get("restart") else []),
        *(["# The liveness wrapper's text, run by sh -c: literal on purpose.",
           "# shellcheck disable=SC1003,SC2016",
           "procmgmt_liveness="
           + quote(liveness.wrapper(name, live, pid_file=str(native["pid_file"])))]
          if live is not None else []),
        "",
        HELPERS_SH.rstrip("\n"),
        "",
        *([LOG_WRITER_SH.rstrip("\n"), ""] if rotation is not None else []),
        *([ready.library([check]).rstrip("\n"), ""]
          if check is not None and ready.checkable(check) else []),
        "# Runs before the process starts, as the invoking user (root when privileged).",
        "procmgmt_initialize() {",
    ]
    initialize = str(native.get("initialize") or "").strip("\n")
    lines += _body(initialize, "    ") if initialize.strip() else ["    :"]
    lines += ["}", "", "procmgmt_start() {", START_HEAD_SH.rstrip("\n")]
    lines += _mkdir_lines(native.get("directories") or [])
    directory = native.get("directory")
    if directory:
        lines.append(f"    cd {quote(str(directory))} || return 1")
    lines.append(f"    set -- {command_line(command)}")
    if live is not None:
        lines += ["    # The liveness watcher starts beside the program and kills it when it",
                  "    # stops answering; the restart loop below starts it again.",
                  '    set -- /bin/sh -c "$procmgmt_liveness" "$procmgmt_name" "$@"']
    restart = _restart_of(native) if mode == "foreground" else None
    if restart is not None:
        lines += ["    # Restarted by the supervising loop (supervise.sh) when it exits; it",
                  "    # counts the restarts next to the pid file and passes reloads on.",
                  '    set -- /bin/sh -c "$procmgmt_supervisor" "$procmgmt_name" '
                  f'{" ".join(restart)} "$procmgmt_stop_signal" "$procmgmt_pidfile.restarts" '
                  '"$procmgmt_reload_signal" "$@"']
    user = native.get("user")
    if user:
        lines += _user_switch_lines(str(user))
    nice = native.get("nice")
    if nice is not None:
        if not isinstance(nice, int) or isinstance(nice, bool):
            raise ValueError(f"nice must be an integer, got {nice!r}")
        lines.append(f'    set -- nice -n {nice} "$@"')
    if isinstance(check, rd.LogLine):
        lines.append("    # Only log lines written after this size count as ready.")
        lines += ["    " + line for line in ready.offset_lines(check)]
    if mode == "daemon":
        lines.append(START_DAEMON_SH.rstrip("\n"))
    else:
        spawn = SPAWN_APPEND_SH if rotation is None else SPAWN_ROTATING_SH
        lines.append((START_FOREGROUND_SH + spawn + START_FOREGROUND_TAIL_SH).rstrip("\n"))
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
    if not ready.checkable(check):
        return [f"    # Readiness ({check.describe()}) cannot be checked from sh: procmgmt's",
                "    # engine waits for it during a switch; this script does not."]
    wait = ready.wait_lines(name, check, pid_file=pid_file,
                                offset='"$procmgmt_ready_offset"', indent="        ")
    return [
        f"    # Ready means: {' '.join(check.describe().split())}. procmgmt's engine probes",
        f"    # that itself and sets {ready.READY_WAIT_ENV}=0.",
        f'    if [ "${{{ready.READY_WAIT_ENV}:-1}}" != 0 ]; then',
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


def signal_of(native: dict[str, Any], key: str, default: str) -> str:
    """A signal name of the native model without ``SIG`` (``-INT``, ``SIGINT`` -> ``INT``)."""
    name = str(native.get(key) or default).removeprefix("-").removeprefix("SIG")
    if not _SIGNAL_NAME.match(name):
        raise ValueError(f"{key}: {name!r} is not a signal name")
    return name


def _int_seconds(native: dict[str, Any], key: str, default: int) -> int:
    value = seconds_of(native, key, default)
    if value != int(value):
        raise ValueError(f"{key} must be whole seconds, got {value!r}")
    return int(value)


def _restart_of(native: dict[str, Any]) -> list[str] | None:
    """The supervising loop's POLICY DELAY MAX WINDOW words (``restart``: a dict
    with policy "on-failure" or "always", delay and window in seconds, max a
    count or None), or None: the process is not restarted."""
    raw = native.get("restart")
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("policy") not in ("on-failure", "always"):
        raise ValueError(f"restart must be None or a dict with policy 'on-failure' or "
                         f"'always', got {raw!r}")
    delay = seconds_of(raw, "delay", 1)
    window = _int_seconds(raw, "window", 60)
    most = raw.get("max")
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
        raise ValueError(f"restart.max must be None or a positive integer, got {most!r}")
    # POSIX sleep takes whole seconds: rounded up, never below the model's delay.
    return [str(raw["policy"]), str(math.ceil(delay)), quote("" if most is None else str(most)),
            str(window)]
