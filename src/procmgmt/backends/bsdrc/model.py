"""The checked native model of one rc.d script, and rc.subr's naming rules.

:meth:`RcScriptModel.from_native` validates an (overridden) native model
once, so the renderer writes only values rc.subr can take as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.shared.logrotation import rotation_of

#: rc.subr's default signals: sig_stop/sig_reload are written only when different.
DEFAULT_STOP_SIGNAL = "TERM"
DEFAULT_RELOAD_SIGNAL = "HUP"
DEFAULT_RC_SUBR = "/etc/rc.subr"
DEFAULT_DAEMON_PROGRAM = "/usr/sbin/daemon"
#: Without a REQUIRE, rcorder may run a local script at boot before the
#: local file systems are mounted; LOGIN is what FreeBSD ports use for daemons.
DEFAULT_REQUIRES = ("LOGIN",)
#: rc.shutdown only stops scripts with the ``shutdown`` keyword.
DEFAULT_KEYWORDS = ("shutdown",)

#: Words that rc.subr interpolates unquoted into eval'ed strings or ``[ ]``
#: tests (pidfile, command, procname, chdir, user, env file): they must not
#: need quoting.
SAFE_WORD = re.compile(r"^[A-Za-z0-9_./:@%+=,-]+\Z")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_SIGNAL_NAME = re.compile(r"^[A-Z][A-Z0-9]*\Z")
#: Condition names in headers are whitespace-separated words.
_CONDITION = re.compile(r"^[^\s#]+$")


def var_prefix(name: str) -> str:
    """rc.subr's ``name`` for a process name: a shell identifier (``a-b.c`` -> ``a_b_c``)."""
    prefix = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return prefix if IDENTIFIER.match(prefix) else f"_{prefix}"


@dataclass(frozen=True)
class RcScriptModel:
    """A checked native model: every value the renderer writes, validated."""

    name: str
    file: str
    description: str
    provides: tuple[str, ...]
    require_line: tuple[str, ...]
    before: tuple[str, ...]
    keywords: tuple[str, ...]
    rc_subr: str
    rcvar: str
    enable_default: str
    command: str
    program: str
    argv: tuple[str, ...]
    pid_file: str
    procname: str
    stop_signal: str
    reload_signal: str
    user: str | None
    chdir: str | None
    nice: int | None
    umask: str | None
    environment: Mapping[str, str]
    path: str | None
    initialize: str
    extra_commands: tuple[str, ...]
    rcvar_defaults: Mapping[str, str]
    readiness: rd.Readiness | None = None
    #: Seconds from the stop signal to SIGKILL (None: rc.subr's stop, which waits
    #: without a limit).
    stop_timeout: int | None = None
    #: The pid file a supervising daemon(8) writes its child's pid into (-p), read
    #: by the stop with a timeout (None: no supervisor, or no timeout).
    child_pid_file: str | None = None
    #: (max bytes, backups) when daemon(8)'s output goes through the rotating
    #: log writer (foreground mode only), and the log file it writes.
    log_rotation: tuple[int, int] | None = None
    log_file: str | None = None

    @property
    def script_path(self) -> str:
        """Path of the script inside the store entry."""
        return f"etc/rc.d/{self.file}"

    @property
    def log_writer_path(self) -> str:
        """Path of the log writer program inside the store entry (log rotation)."""
        return f"libexec/{self.file}-log-writer"

    @property
    def env_path(self) -> str:
        """Path of the environment file inside the store entry (not in rc.d:
        rcorder globs rc.d directories)."""
        return f"etc/env/{self.file}.env"

    @classmethod
    def from_native(cls, native: Mapping[str, Any]) -> RcScriptModel:
        """Check an (overridden) native model; ValueError names the bad key."""
        name = _str(native, "name")
        if not IDENTIFIER.match(name):
            raise ValueError(f"name: {name!r} is not a shell identifier (rc.subr uses "
                             "${name}_xxx variables)")
        file = _str(native, "file")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@-]*", file):
            raise ValueError(f"file: {file!r} is not a valid script file name")
        mode = native.get("mode")
        if mode not in ("daemon", "foreground"):
            raise ValueError(f"mode must be 'daemon' or 'foreground', got {mode!r}")
        program = _word(native, "program")
        args = _str_list(native, "args")
        pid_file = _word(native, "pid_file")
        rotation = None
        log_file: str | None = None
        if mode == "foreground":
            log_file = _word(native, "log_file")
            rotation = rotation_of(native)
            # With rotation daemon(8) writes into the log writer's fifo.
            output = f"{log_file}.fifo" if rotation else log_file
            command = _word(native, "daemon_program")
            # -P: the pid file holds daemon(8)'s own pid, the supervisor rc.subr
            # must stop when daemon(8) restarts the program (-r, -R).
            pid_flag = "-P" if native.get("supervise") else "-p"
            # -p beside -P: the child's pid, which a stop with a timeout must
            # know (daemon(8) exits on SIGTERM without waiting for its child).
            child_pid_file = _optional_word(native, "child_pid_file") if native.get(
                "supervise") else None
            child: tuple[str, ...] = ("-p", child_pid_file) if child_pid_file else ()
            argv = (*_str_list(native, "daemon_flags"), pid_flag, pid_file, *child,
                    "-o", output, program, *args)
        else:
            command, argv, child_pid_file = program, tuple(args), None
        rcvar = _str(native, "rcvar")
        if not IDENTIFIER.match(rcvar):
            raise ValueError(f"rcvar: {rcvar!r} is not a shell identifier")
        enable_default = _str(native, "enable_default")
        if not re.fullmatch(r"(?i)yes|no|true|false|on|off|1|0", enable_default):
            raise ValueError(f"enable_default: {enable_default!r} is not YES or NO")
        nice = native.get("nice")
        if nice is not None and (not isinstance(nice, int) or isinstance(nice, bool)):
            raise ValueError(f"nice must be an integer, got {nice!r}")
        umask = native.get("umask")
        if umask is not None and not re.fullmatch(r"[0-7]{1,4}", str(umask)):
            raise ValueError(f"umask: {umask!r} is not an octal umask")
        environment = native.get("environment") or {}
        if not isinstance(environment, Mapping):
            raise ValueError("environment must be a dict of names to values")
        for var in environment:
            if not IDENTIFIER.match(str(var)):
                raise ValueError(f"environment: {var!r} is not a valid variable name")
        defaults = native.get("rcvar_defaults") or {}
        if not isinstance(defaults, Mapping):
            raise ValueError("rcvar_defaults must be a dict of knob names to values")
        for knob, value in defaults.items():
            if not IDENTIFIER.match(f"{name}_{knob}"):
                raise ValueError(f"rcvar_defaults: {knob!r} does not make a variable name")
            if not SAFE_WORD.match(str(value)):
                raise ValueError(f"rcvar_defaults.{knob}: {value!r} must be a plain word")
        requires = [*_conditions(native, "dependencies"), *_conditions(native, "requires")]
        raw = native.get("readiness")
        check = raw if isinstance(raw, rd.Readiness) else rd.from_json(raw)
        path = native.get("path")
        return cls(
            name=name,
            file=file,
            description=" ".join(str(native.get("description") or file).split()),
            provides=tuple(_conditions(native, "provides") or [file]),
            require_line=tuple(dict.fromkeys(requires)),
            before=tuple(_conditions(native, "before")),
            keywords=tuple(_conditions(native, "keywords")),
            rc_subr=_word(native, "rc_subr"),
            rcvar=rcvar,
            enable_default=enable_default.upper(),
            command=command,
            program=program,
            argv=argv,
            pid_file=pid_file,
            procname=_word(native, "procname") if native.get("procname") else program,
            stop_signal=_signal(native, "stop_signal", DEFAULT_STOP_SIGNAL),
            reload_signal=_signal(native, "reload_signal", DEFAULT_RELOAD_SIGNAL),
            user=_optional_word(native, "user"),
            chdir=_optional_word(native, "chdir"),
            nice=nice,
            umask=None if umask is None else str(umask),
            environment={str(k): str(v) for k, v in environment.items()},
            path=None if not path else str(path),
            initialize=str(native.get("initialize") or ""),
            extra_commands=tuple(_conditions(native, "extra_commands")),
            rcvar_defaults={str(k): str(v) for k, v in defaults.items()},
            readiness=check,
            stop_timeout=_stop_timeout(native),
            child_pid_file=child_pid_file,
            log_rotation=rotation,
            log_file=log_file,
        )


def _str(native: Mapping[str, Any], key: str) -> str:
    value = native.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _word(native: Mapping[str, Any], key: str) -> str:
    value = _str(native, key)
    if not SAFE_WORD.match(value):
        raise ValueError(f"{key}: {value!r} must be a plain word (rc.subr uses it unquoted)")
    return value


def _optional_word(native: Mapping[str, Any], key: str) -> str | None:
    return None if native.get(key) in (None, "") else _word(native, key)


def _str_list(native: Mapping[str, Any], key: str) -> list[str]:
    value = native.get(key) or []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{key} must be a list of strings, got {value!r}")
    items = list(value)
    if not all(isinstance(v, str) for v in items):
        raise ValueError(f"{key} must be a list of strings, got {value!r}")
    if any("\0" in v for v in items):
        raise ValueError(f"{key}: arguments cannot contain NUL characters")
    return items


def _conditions(native: Mapping[str, Any], key: str) -> list[str]:
    value = native.get(key) or []
    if isinstance(value, str):
        value = value.split()
    items = [str(v) for v in value]
    for item in items:
        if not _CONDITION.match(item):
            raise ValueError(f"{key}: {item!r} is not a single word")
    return items


def _stop_timeout(native: Mapping[str, Any]) -> int | None:
    value = native.get("stop_timeout")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"stop_timeout must be a whole number of seconds, at least 1, "
                         f"got {value!r}")
    return value


def _signal(native: Mapping[str, Any], key: str, default: str) -> str:
    value = str(native.get(key) or default).removeprefix("-").removeprefix("SIG")
    if not _SIGNAL_NAME.match(value):
        raise ValueError(f"{key}: {value!r} is not a signal name")
    return value
