"""Check a whole model and report every problem at once.

Each problem names the model file and line, the instance and the field,
and says how to fix it. Only a model without problems is normalized into
:class:`~procmgmt.model.spec.ProcessSpec` objects, in start order.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from procmgmt.backends import backend_names, capabilities_of
from procmgmt.backends.base import PidFiles
from procmgmt.errors import Problem, ValidationError
from procmgmt.model.contain import user_code
from procmgmt.model.credentials import Credentials, Group, User
from procmgmt.model.loader import Model
from procmgmt.model.process import RESTART_POLICIES, RESTART_WINDOW, Instance, Process
from procmgmt.model.spec import ProcessSpec, normalize_signal, to_spec
from procmgmt.numbers import is_real, seconds_problem
from procmgmt.ordering import find_cycle, ranks, start_order
from procmgmt.pids import MARKER_DEPLOYMENT, MARKER_PROCESS
from procmgmt.readiness import (
    HTTP,
    LIVENESS_KINDS,
    TCP,
    Liveness,
    LogLine,
    Notify,
    Readiness,
    notify_socket_path,
)
from procmgmt.settings import Settings

#: Names become file names, unit names, supervisord program names and shell words.
#: ``\Z``, not ``$``: ``$`` also matches before a trailing newline ("web\n").
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
#: User and group names: POSIX's portable filename characters, not starting with a
#: hyphen, at most 32 characters (useradd's limit), not all digits (read as an id).
ACCOUNT_NAME_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}\Z")
#: Largest uid/gid: uid_t is 32 bits and (uid_t)-1 means "no change" to chown/setreuid.
MAX_ID = 2**32 - 2
#: Shell variables that change how the generated scripts themselves run.
SHELL_RESERVED = frozenset({"IFS", "PPID", "OPTIND", "OPTARG", "PS1", "PS2", "PS4", "LINENO"})
#: Stop signals every backend can send (names every supported system shares).
#: HUP is not one: the generated scripts and proxies send it for ``reload``.
STOP_SIGNALS = ("TERM", "INT", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "KILL")
#: Reload signals: the ones servers use for "read your configuration again"
#: (HUP for most, USR1/USR2 for log reopening or graceful reloads).
RELOAD_SIGNALS = ("HUP", "USR1", "USR2", "WINCH", "QUIT", "INT", "TERM", "ALRM")
#: Longest unix socket path (sun_path is 108 bytes including the NUL).
UNIX_SOCKET_MAX = 107
#: Linux's execve(2) refuses (E2BIG) any one argument or environment string longer
#: than MAX_ARG_STRLEN, 32 pages = 131072 bytes with its terminating NUL: such a
#: value can never reach the process, whichever manager starts it.
MAX_ARG_STRLEN = 131072
#: execve's limit for arguments and environment together when the system does not
#: say (``sysconf(_SC_ARG_MAX)``; Linux: a quarter of the stack limit, 2 MiB by default).
DEFAULT_ARG_MAX = 2 * 1024 * 1024

def _is_str_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class _Collector:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.problems: list[Problem] = []

    def add(self, inst_name: str | None, field: str | None, message: str,
            inst: Instance | None = None) -> None:
        file, line = self.model.file, None
        if inst is not None:
            for origin in (inst.origin, inst.process.origin):
                if origin[0] and os.path.abspath(origin[0]) == self.model.file:
                    file, line = origin
                    break
            else:
                file, line = inst.process.origin if inst.process.origin[0] else (file, None)
        self.problems.append(Problem(message, inst_name, field, file, line))


def _check_process(c: _Collector, key: str, inst: Instance, members: set[int]) -> None:
    p = inst.process
    add: Callable[[str, str], None] = lambda field, msg: c.add(key, field, msg, inst)  # noqa: E731
    name = p.effective_name
    if name is None:
        add("name", "no process name was specified or can be inferred: "
            "set name= or instance_name=")
    elif not isinstance(name, str) or not NAME_RE.match(name):
        add("name" if p.name is not None else "instance_name",
            f"invalid name {name!r}: use letters, digits, '_', '.', '@', '-' "
            "(at most 100 characters, not starting with a punctuation mark)")
    if p.instance_name is not None and (
        not isinstance(p.instance_name, str) or not NAME_RE.match(p.instance_name)
    ):
        add("instance_name", f"invalid instance name {p.instance_name!r}")
    for field in ("description", "initialize", "pid_file", "directory", "user",
                  "pid_file_program"):
        value = getattr(p, field)
        if value is not None and not isinstance(value, str):
            add(field, f"must be a string, got {type(value).__name__} {value!r}")
    for field, value in (("daemon", p.effective_daemon), ("foreground_process",
                                                          p.effective_foreground)):
        if value is not None and (not isinstance(value, str) or not value):
            add(field, f"must be a non-empty string (an executable), got {value!r}")
    if p.effective_daemon is None and p.effective_foreground is None:
        add("process", "nothing to run: set process=, foreground_process= or daemon=")
    for field in ("args", "daemon_extra_args", "foreground_process_extra_args", "path"):
        value = getattr(p, field)
        if isinstance(value, str) or not _is_str_list(value):
            add(field, f"must be a list of strings, got {value!r}")
    for field in ("daemon_args", "foreground_process_args"):
        value = getattr(p, field)
        if value is not None and (isinstance(value, str) or not _is_str_list(value)):
            add(field, f"must be a list of strings, got {value!r}")
    for field in ("pid_file", "directory"):
        value = getattr(p, field)
        if isinstance(value, str) and not value.startswith("/"):
            add(field, f"must be an absolute path, got {value!r}")
    if not isinstance(p.environment, Mapping):
        add("environment", f"must be a dict of name -> value, got {type(p.environment).__name__}")
    else:
        for k, v in p.environment.items():
            if not isinstance(k, str) or not ENV_NAME_RE.match(k):
                add("environment", f"invalid variable name {k!r}: use letters, digits and '_', "
                    "not starting with a digit")
            elif k.startswith("procmgmt_") or k in SHELL_RESERVED:
                add("environment", f"variable name {k!r} is reserved: the generated shell "
                    "scripts use names starting with 'procmgmt_', and "
                    + ", ".join(sorted(SHELL_RESERVED)) + " change how a shell runs them")
            if not (isinstance(v, str) or is_real(v)):
                add(f"environment.{k}", f"value must be a string or a finite number, got {v!r}")
    if p.umask is not None:
        try:
            number = p.umask if isinstance(p.umask, int) and not isinstance(p.umask, bool) \
                else int(str(p.umask), 8)
            if not 0 <= number <= 0o777:
                raise ValueError
        except ValueError:
            add("umask", f"must be an octal number between 000 and 777, got {p.umask!r}")
    if p.nice is not None and (isinstance(p.nice, bool) or not isinstance(p.nice, int)
                               or not -20 <= p.nice <= 19):
        add("nice", f"must be an integer between -20 and 19, got {p.nice!r}")
    if isinstance(p.pid_file_program, str) and (not p.pid_file_program.strip() or any(
            c.isspace() for c in p.pid_file_program)):
        add("pid_file_program", f"must be a program name or path without spaces, "
            f"got {p.pid_file_program!r}")
    if p.stop_signal is not None and (not isinstance(p.stop_signal, str)
                                      or normalize_signal(p.stop_signal) not in STOP_SIGNALS):
        add("stop_signal", f"must be one of {', '.join(STOP_SIGNALS)} (with or without "
            f"'SIG'), got {p.stop_signal!r}")
    if p.reload_signal is not None and (
            not isinstance(p.reload_signal, str)
            or normalize_signal(p.reload_signal) not in RELOAD_SIGNALS):
        add("reload_signal", f"must be one of {', '.join(RELOAD_SIGNALS)} (with or without "
            f"'SIG'), got {p.reload_signal!r}")
    if p.restart is not None and p.restart not in RESTART_POLICIES:
        add("restart", f"must be one of {', '.join(map(repr, RESTART_POLICIES))}, "
            f"got {p.restart!r}")
    for field in ("restart_delay", "restart_max"):
        if getattr(p, field) is not None and p.restart not in ("on-failure", "always"):
            add(field, "needs restart='on-failure' or restart='always' (it says how "
                "restarts happen)")
    if p.restart_delay is not None:
        why = seconds_problem(p.restart_delay, zero_ok=True)
        if why:
            add("restart_delay", why)
    if p.restart_max is not None and (isinstance(p.restart_max, bool)
                                      or not isinstance(p.restart_max, int)
                                      or p.restart_max < 1):
        add("restart_max", f"must be a positive integer (restarts within {RESTART_WINDOW} s), "
            f"got {p.restart_max!r}")
    if p.stop_timeout is not None:
        why = seconds_problem(p.stop_timeout)
        if why:
            add("stop_timeout", why)
    if isinstance(p.dependencies, (str, Process)) or not isinstance(p.dependencies, (list, tuple)):
        add("dependencies", "must be a list of Process objects")
    else:
        for d in p.dependencies:
            if isinstance(d, Instance):
                add("dependencies", "contains an Instance: pass its .process instead")
            elif not isinstance(d, Process):
                add("dependencies", f"must reference Process objects, not {d!r} "
                    "(dependencies are objects, not names)")
            elif d is p:
                add("dependencies", "a process cannot depend on itself")
            elif id(d) not in members:
                add("dependencies", f"depends on process {d.effective_name!r}, which is not an "
                    "instance of this model: add it to the dict processes() returns")
    if not isinstance(p.credentials, Credentials):
        add("credentials", "must be a Credentials(groups=..., users=...) object")
    else:
        for gname, g in p.credentials.groups.items():
            if not isinstance(g, Group):
                add(f"credentials.groups.{gname}", "must be a Group")
        for uname, u in p.credentials.users.items():
            if not isinstance(u, User):
                add(f"credentials.users.{uname}", "must be a User")
    if not isinstance(p.overrides, Mapping):
        add("overrides", "must be a dict of backend name -> dict or function")
    else:
        for backend, ov in p.overrides.items():
            if backend not in backend_names():
                add(f"overrides.{backend}", f"unknown backend {backend!r}; known: "
                    + ", ".join(backend_names()))
            elif not (isinstance(ov, Mapping) or callable(ov)):
                add(f"overrides.{backend}", "must be a dict (merged) or a function (replaces)")
    if p.readiness is not None and not isinstance(p.readiness, Readiness):
        add("readiness", "must be a readiness check such as TCP(port=...), HTTP(url=...), "
            "Command(...), LogLine(...), PidFile() or Notify()")
    elif isinstance(p.readiness, Readiness):
        for fieldname, message in _check_problems(p.readiness):
            add(f"readiness.{fieldname}" if fieldname else "readiness", message)
    if p.liveness is not None:
        for fieldname, message in _liveness_problems(p):
            add(f"liveness.{fieldname}" if fieldname else "liveness", message)
    for field in ("name", "description", "initialize", "process", "args", "daemon_args",
                  "foreground_process_args", "environment", "directory", "pid_file", "user"):
        if _has_nul(getattr(p, field)):
            add(field, "contains a NUL character, which no process manager can pass on")


def _check_problems(r: Readiness) -> list[tuple[str, str]]:
    """(field, message) for the values of one readiness declaration."""
    out: list[tuple[str, str]] = []
    for fieldname in ("timeout", "interval"):
        problem = seconds_problem(getattr(r, fieldname))
        if problem:
            out.append((fieldname, problem))
    if isinstance(r, HTTP) and (isinstance(r.status, bool) or not isinstance(r.status, int)
                                or not 100 <= r.status <= 599):
        out.append(("status", f"must be an HTTP status code 100-599, got {r.status!r}"))
    if isinstance(r, TCP) and (isinstance(r.port, bool) or not isinstance(r.port, int)
                               or not 0 < r.port < 65536):
        out.append(("port", f"must be a port number 1-65535, got {r.port!r}"))
    if isinstance(r, HTTP) and not str(r.url).startswith(("http://", "https://")):
        out.append(("url", f"must be an http:// or https:// URL, got {r.url!r}"))
    if isinstance(r, LogLine):
        try:
            re.compile(r.pattern)
        except re.error as exc:
            out.append(("pattern", f"invalid regular expression: {exc}"))
    return out


def _liveness_problems(p: Process) -> list[tuple[str, str]]:
    """(field under ``liveness``, message) for a process's liveness declaration."""
    live = p.liveness
    if isinstance(live, Readiness):
        return [("", f"must be Liveness(check=..., period=...), not a bare readiness check: "
                 f"write Liveness({type(live).__name__}(...), period=10)")]
    if not isinstance(live, Liveness):
        return [("", "must be a Liveness(check=TCP(port=...), period=..., timeout=..., "
                 "failures=...) declaration")]
    out: list[tuple[str, str]] = []
    if not isinstance(live.check, Readiness):
        out.append(("check", "must be a readiness check: TCP(port=...), HTTP(url=...), "
                    "Command(...) or PidFile()"))
    elif live.check.kind not in LIVENESS_KINDS:
        out.append(("check", f"cannot be a {live.check.kind!r} check (one of "
                    f"{', '.join(LIVENESS_KINDS)}): a log line once written stays matched, "
                    "and sd_notify liveness is the program's own WATCHDOG=1"))
    else:
        out += [(f"check.{f}", m) for f, m in _check_problems(live.check)
                if f not in ("timeout", "interval")]
    for fieldname, zero_ok in (("period", False), ("timeout", False), ("delay", True)):
        problem = seconds_problem(getattr(live, fieldname), zero_ok=zero_ok)
        if problem:
            out.append((fieldname, problem))
    if isinstance(live.failures, bool) or not isinstance(live.failures, int) \
            or live.failures < 1:
        out.append(("failures", f"must be a positive integer (failed probes in a row), "
                    f"got {live.failures!r}"))
    if p.restart not in ("on-failure", "always"):
        out.append(("", "needs restart='on-failure' or restart='always': the check kills a "
                    "process that stops answering, and only a restart policy starts it "
                    "again"))
    if p.effective_foreground is None:
        out.append(("", "needs a foreground process: the watcher starts beside the program "
                    "it execs, and a self-daemonizing program leaves it"))
    return out


def _arg_max() -> int:
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_ARG_MAX
    return value if value > 0 else DEFAULT_ARG_MAX


def _check_exec_limits(c: _Collector, key: str, inst: Instance, spec: ProcessSpec) -> None:
    """Arguments and environment that execve(2) would refuse with E2BIG: reported
    here, naming the limit, instead of a process that never starts (or a manager
    that chokes on the value). The total is only reported when no single string
    is already too long (that one is the thing to fix)."""
    reported = len(c.problems)
    env = dict(spec.environment)
    if spec.path_value():
        env["PATH"] = str(spec.path_value())
    total = 0
    for name, value in sorted(env.items()):
        size = len(os.fsencode(f"{name}={value}")) + 1
        total += size + 8
        if size > MAX_ARG_STRLEN:
            c.add(key, "path" if name == "PATH" and "PATH" not in spec.environment
                  else f"environment.{name}",
                  f"{name}=... is {size} bytes; one environment entry can be at most "
                  f"{MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN of Linux execve), whatever the "
                  "process manager: pass large data in a file instead", inst)
    longest = 0
    for fieldname, argv in (("daemon_args", (spec.daemon, *spec.daemon_args)),
                            ("foreground_process_args", (spec.foreground,
                                                         *spec.foreground_args))):
        words = [w for w in argv if w is not None]
        sizes = [len(os.fsencode(w)) + 1 for w in words]
        longest = max(longest, sum(sizes) + 8 * len(sizes))
        for word, size in zip(words, sizes, strict=True):
            if size > MAX_ARG_STRLEN:
                c.add(key, fieldname, f"an argument is {size} bytes ({word[:20]!r}...); one "
                      f"argument can be at most {MAX_ARG_STRLEN} bytes (MAX_ARG_STRLEN of "
                      "Linux execve): pass large data in a file instead", inst)
    arg_max = _arg_max()
    if total + longest > arg_max and len(c.problems) == reported:
        c.add(key, "environment", f"arguments and environment together are {total + longest} "
              f"bytes; execve allows at most {arg_max} (ARG_MAX) for both: pass large data "
              "in a file instead", inst)

def account_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user or group name on every system, or None."""
    if ACCOUNT_NAME_RE.match(name) and not name.isdigit():
        return None
    if not name:
        return "it is empty"
    if len(name) > 32:
        return f"it has {len(name)} characters, at most 32 are portable"
    if name.isdigit():
        return "an all-digit name is taken for a numeric id"
    if name.startswith("-"):
        return "it starts with '-', which commands take for an option"
    return ("use letters, digits, '.', '_' and '-' only (POSIX portable names; "
            "no spaces, ':' or '/')")


def _check_accounts(c: _Collector, key: str, inst: Instance) -> None:
    """The process's user and its declared users and groups: names every system
    accepts (each bad name reported once), ids in range."""
    p = inst.process
    reported: set[str] = set()

    def name(field: str, kind: str, value: Any) -> None:
        if not isinstance(value, str):
            c.add(key, field, f"{kind} names must be strings, got {value!r}", inst)
        elif value not in reported and account_name_problem(value):
            reported.add(value)
            c.add(key, field, f"invalid {kind} name {value!r}: {account_name_problem(value)}",
                  inst)

    def number(field: str, value: Any) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= MAX_ID):
            c.add(key, field, f"must be an integer between 0 and {MAX_ID}, got {value!r}", inst)

    if p.user is not None:
        name("user", "user", p.user)
    for gname, g in p.credentials.groups.items():
        name(f"credentials.groups.{gname}", "group", gname)
        number(f"credentials.groups.{gname}.gid", g.gid)
    for uname, u in p.credentials.users.items():
        name(f"credentials.users.{uname}", "user", uname)
        number(f"credentials.users.{uname}.uid", u.uid)
        if u.group is not None:
            name(f"credentials.users.{uname}.group", "group", u.group)


def _check_conflicts(c: _Collector, model: Model, specs: dict[str, ProcessSpec],
                     settings: Settings) -> None:
    """Resources that must differ between instances: names, pid files, ports, dirs."""
    owners: dict[tuple[str, str], str] = {}
    capabilities = capabilities_of(settings.process_manager)
    pid_files = capabilities.pid_files if capabilities is not None else PidFiles.DAEMONS

    def claim(kind: str, value: Any, key: str, field: str, what: str) -> None:
        token = (kind, str(value))
        other = owners.get(token)
        if other is not None and other != key:
            c.add(key, field, f"{what} {value!r} is also used by instance {other!r}; "
                  "give each instance its own (derive it from the instance name)",
                  model.instances[key])
        else:
            owners[token] = key

    for key, inst in model.instances.items():
        spec = specs.get(key)
        if spec is None:
            continue
        claim("name", spec.name, key, "name", "process name")
        needs_pid = spec.daemon is not None or spec.pid_file is not None
        if needs_pid or pid_files is PidFiles.EVERY_PROCESS:
            claim("pid", spec.derived_pid_file(settings), key, "pid_file", "pid file")
        for mkey, value in inst.metadata.items():
            if value is None:
                continue
            if mkey == "port" or mkey.endswith("_port"):
                if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
                    c.add(key, mkey, f"port must be an integer 1-65535, got {value!r}", inst)
                else:
                    claim("port", value, key, mkey, "port")
            elif mkey in ("state_dir", "data_dir") or mkey.endswith("_dir"):
                claim("dir", os.path.normpath(str(value)), key, mkey, "directory")
            is_socket = mkey.endswith("socket") or mkey.endswith("socket_path")
            if is_socket and len(os.fsencode(str(value))) > UNIX_SOCKET_MAX:
                c.add(key, mkey, f"unix socket path is {len(os.fsencode(str(value)))} bytes, "
                      f"longer than the {UNIX_SOCKET_MAX}-byte limit: use a shorter "
                      "--runtime-dir or instance name", inst)


def _check_credentials(c: _Collector, model: Model) -> None:
    """A user or group declared by several instances must be declared identically:
    the accounts are shared, and which declaration would win is arbitrary."""
    seen: dict[tuple[str, str], tuple[str, Group | User]] = {}
    for key, inst in model.instances.items():
        _check_accounts(c, key, inst)
        creds = inst.process.credentials
        declared: list[tuple[str, str, Group | User]] = [
            *(("group", n, g) for n, g in creds.groups.items()),
            *(("user", n, u) for n, u in creds.users.items())]
        for kind, name, value in declared:
            first = seen.setdefault((kind, name), (key, value))
            if first[0] == key or first[1] == value:
                continue
            fields = [f.name for f in dataclasses.fields(value)
                      if getattr(value, f.name) != getattr(first[1], f.name)]
            c.add(key, f"credentials.{kind}s.{name}",
                  f"{kind} {name!r} is also declared by instance {first[0]!r} with different "
                  f"{', '.join(fields)}; instances sharing a {kind} must declare it identically",
                  inst)


#: Environment variables procmgmt adds to every process: which deployment
#: (:data:`procmgmt.pids.MARKER_DEPLOYMENT`, which the pid-file trust rule reads) and
#: which process it belongs to. ``procmgmt doctor`` finds strays by them.


def deployment_id(settings: Settings) -> str:
    """``<state dir>:<profile>``: unique per deployment on a machine."""
    return f"{settings.state_dir}:{settings.profile}"


def deployment_marker(settings: Settings, name: str) -> dict[str, str]:
    """The marker variables of process ``name``."""
    return {MARKER_DEPLOYMENT: deployment_id(settings), MARKER_PROCESS: name}


def validate(model: Model, settings: Settings) -> list[ProcessSpec]:
    """Specs in start order, or :class:`ValidationError` listing every problem.

    Contained like the evaluation itself: the model's values may be user
    classes (a dict whose ``items()`` raises or prints) and reading them is
    running user code.
    """
    with user_code(model.file, settings.model_timeout, blame_file=False):
        return _validate(model, settings)


def _validate(model: Model, settings: Settings) -> list[ProcessSpec]:
    c = _Collector(model)
    members = {id(inst.process) for inst in model.instances.values()}
    seen: dict[int, str] = {}
    for key, inst in model.instances.items():
        if not NAME_RE.match(key):
            c.add(key, None, f"invalid instance name {key!r}: use letters, digits, "
                  "'_', '.', '@', '-'", inst)
        if id(inst.process) in seen:
            c.add(key, None, f"is the same process object as instance {seen[id(inst.process)]!r}",
                  inst)
        seen.setdefault(id(inst.process), key)
        _check_process(c, key, inst, members)
    if c.problems:
        raise ValidationError(c.problems)

    key_of = {id(inst.process): key for key, inst in model.instances.items()}
    name_of = {id(inst.process): inst.process.effective_name or key
               for key, inst in model.instances.items()}
    graph = {key: [key_of[id(d)] for d in inst.process.dependencies]
             for key, inst in model.instances.items()}
    cycle = find_cycle(graph)
    if cycle:
        first = cycle[0]
        c.add(first, "dependencies", "dependency cycle: " + " -> ".join(cycle) +
              "; remove one of these dependencies", model.instances[first])
        raise ValidationError(c.problems)
    rank_of = ranks(graph)
    specs = {key: to_spec(inst.process, name_of, rank_of[key])
             for key, inst in model.instances.items()}
    for key, spec in specs.items():
        env = {**spec.environment, **deployment_marker(settings, spec.name)}
        if isinstance(spec.readiness, Notify) and "NOTIFY_SOCKET" not in spec.environment:
            # Every backend gets sd_notify: procmgmt listens on this socket while starting.
            env["NOTIFY_SOCKET"] = notify_socket_path(settings.runtime_dir, spec.name)
        specs[key] = dataclasses.replace(spec, environment=env)
        _check_exec_limits(c, key, model.instances[key], specs[key])
    _check_conflicts(c, model, specs, settings)
    _check_credentials(c, model)
    if c.problems:
        raise ValidationError(c.problems)
    return [specs[k] for k in start_order(graph)]
