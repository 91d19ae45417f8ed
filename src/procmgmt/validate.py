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

from procmgmt.errors import Problem, ValidationError
from procmgmt.model.credentials import Credentials, Group, User
from procmgmt.model.loader import Model
from procmgmt.model.process import Instance, Process
from procmgmt.model.spec import ProcessSpec, to_spec
from procmgmt.ordering import find_cycle, ranks, start_order
from procmgmt.pids import MARKER_DEPLOYMENT
from procmgmt.readiness import HTTP, TCP, LogLine, Notify, Readiness, notify_socket_path
from procmgmt.settings import Settings

#: Names become file names, unit names, supervisord program names and shell words.
#: ``\Z``, not ``$``: ``$`` also matches before a trailing newline ("web\n").
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
#: Shell variables that change how the generated scripts themselves run.
SHELL_RESERVED = frozenset({"IFS", "PPID", "OPTIND", "OPTARG", "PS1", "PS2", "PS4", "LINENO"})
#: Longest unix socket path (sun_path is 108 bytes including the NUL).
UNIX_SOCKET_MAX = 107

KNOWN_BACKENDS = (
    "sysvinit", "bsdrc", "systemd", "supervisord", "launchd", "cygrunsrv", "s6-rc", "docker",
    "disnix",
)


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
    for field in ("description", "initialize", "pid_file", "directory", "user"):
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
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                add(f"environment.{k}", f"value must be a string or a number, got {v!r}")
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
            if backend not in KNOWN_BACKENDS:
                add(f"overrides.{backend}", f"unknown backend {backend!r}; known: "
                    + ", ".join(KNOWN_BACKENDS))
            elif not (isinstance(ov, Mapping) or callable(ov)):
                add(f"overrides.{backend}", "must be a dict (merged) or a function (replaces)")
    if p.readiness is not None and not isinstance(p.readiness, Readiness):
        add("readiness", "must be a readiness check such as TCP(port=...), HTTP(url=...), "
            "Command(...), LogLine(...), PidFile() or Notify()")
    elif isinstance(p.readiness, Readiness):
        r = p.readiness
        if not isinstance(r.timeout, (int, float)) or r.timeout <= 0:
            add("readiness.timeout", f"must be a positive number of seconds, got {r.timeout!r}")
        if not isinstance(r.interval, (int, float)) or r.interval <= 0:
            add("readiness.interval", f"must be a positive number of seconds, got {r.interval!r}")
        if isinstance(r, TCP) and (isinstance(r.port, bool) or not isinstance(r.port, int)
                                   or not 0 < r.port < 65536):
            add("readiness.port", f"must be a port number 1-65535, got {r.port!r}")
        if isinstance(r, HTTP) and not str(r.url).startswith(("http://", "https://")):
            add("readiness.url", f"must be an http:// or https:// URL, got {r.url!r}")
        if isinstance(r, LogLine):
            try:
                re.compile(r.pattern)
            except re.error as exc:
                add("readiness.pattern", f"invalid regular expression: {exc}")
    for field in ("name", "description", "initialize", "process", "args", "daemon_args",
                  "foreground_process_args", "environment", "directory", "pid_file", "user"):
        if _has_nul(getattr(p, field)):
            add(field, "contains a NUL character, which no process manager can pass on")


def _check_conflicts(c: _Collector, model: Model, specs: dict[str, ProcessSpec],
                     settings: Settings) -> None:
    """Resources that must differ between instances: names, pid files, ports, dirs."""
    owners: dict[tuple[str, str], str] = {}

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
        if needs_pid or settings.process_manager in ("sysvinit", "bsdrc"):
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
MARKER_PROCESS = "PROCMGMT_PROCESS"


def deployment_id(settings: Settings) -> str:
    """``<state dir>:<profile>``: unique per deployment on a machine."""
    return f"{settings.state_dir}:{settings.profile}"


def deployment_marker(settings: Settings, name: str) -> dict[str, str]:
    """The marker variables of process ``name``."""
    return {MARKER_DEPLOYMENT: deployment_id(settings), MARKER_PROCESS: name}


def validate(model: Model, settings: Settings) -> list[ProcessSpec]:
    """Specs in start order, or :class:`ValidationError` listing every problem."""
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
    _check_conflicts(c, model, specs, settings)
    _check_credentials(c, model)
    if c.problems:
        raise ValidationError(c.problems)
    return [specs[k] for k in start_order(graph)]
