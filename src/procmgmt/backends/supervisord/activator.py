"""supervisord backend: one ``[program:<name>]`` file per process, one supervisord per profile.

Translation prefers foreground processes (supervisord supervises a child it
forked). Daemon-only processes, processes with an ``initialize`` snippet, and
processes whose dependency declares a readiness check (priorities only order
the spawns: the proxy waits until the check passes, see
:mod:`procmgmt.backends._ready_sh`) run through the foreground proxy
(:mod:`procmgmt.backends._proxy`), which the program file finds relative to
itself (``%(here)s/../bin/<name>-proxy``), so the same files work from a store
entry, from procmgmt's link directory and from ``procmgmt generate`` output.

Every value is written so that supervisord's own parser gives back exactly the
argv and environment we meant: configparser strips inline comments (``;`` or
``#`` after whitespace), supervisord expands ``%(...)s`` in most values and
replaces the literal text ``%(here)s`` before that, ``command`` is split with
POSIX shlex, and ``environment`` is split with *non*-POSIX shlex, which has no
escapes at all. What the format cannot hold is rejected by :meth:`validate`
(spec values) or by :meth:`render` (override values) instead of being mangled.

The activator talks XML-RPC over supervisord's unix socket (a ``supervisorctl``
call costs about 0.1 s of interpreter start-up), adds and removes one process
group per program, and shuts an idle supervisord down after stopping its
programs first (a ``shutdown`` with programs running can take tens of seconds:
see the perf baselines). Starts do not block: :meth:`SupervisordActivator.start`
adds the group (autostart spawns it) and returns a probe the engine polls; every
probe and status call reads one shared ``getAllProcessInfo`` table (refreshed at
most every 20 ms) instead of asking per program. A first deploy without
dependency edges boots supervisord with the programs already linked, so it
spawns them all in its first pass and the probes only watch.

Deploying into an existing supervisord (the original's ``SUPERVISORD_CONF_DIR``,
e.g. one deployed as a sysvinit process from :mod:`procmgmt.services.supervisord`):
set ``PROCMGMT_SUPERVISORD_CONF`` to the path of its config file. The socket is
read from ``[unix_http_server] file=``, the include dir from ``[include] files=``
(the first pattern naming a directory of ``*.conf`` files): program files are
linked there and proxies into ``bin/`` next to it (where ``%(here)s/../bin``
points). That supervisord must be running (an error otherwise); procmgmt never
starts or shuts it down, and only touches the links it recorded as its own
(``<procmgmt_dir>/supervisord/<profile>/external.json``, which also remembers
the config for later switches of the profile until it is undeployed). Everything
else is as usual: ``reloadConfig``, groups added and removed in dependency order,
generations, rollback, undeploy (the groups go, supervisord stays).
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import fnmatch
import glob
import itertools
import json
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from procmgmt import fsutil
from procmgmt.backends import _proxy, _ready_sh
from procmgmt.backends._activation import pid_verdict
from procmgmt.backends.base import (
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    DeployedProcess,
    File,
    Generation,
    LogSource,
    ProcessStatus,
)
from procmgmt.errors import DeployError, UsageError
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec, dependents_of
from procmgmt.pids import pid_alive
from procmgmt.settings import Settings
from procmgmt.testhooks import fail_point

log = logging.getLogger(__name__)


#: Key order of rendered program sections (anything else follows, sorted).
KEY_ORDER = (
    "command", "priority", "environment", "directory", "umask", "user", "autostart",
    "autorestart", "startsecs", "startretries", "exitcodes", "stopsignal", "stopwaitsecs",
    "stopasgroup", "killasgroup", "stdout_logfile", "redirect_stderr",
)

#: Longest environment= and command= value procmgmt writes. supervisord splits both
#: with shlex, which appends one character at a time to a string: the time grows with
#: the square of the length (measured with supervisor 4.3: 64 KiB 0.24 s, 128 KiB 1 s,
#: 300 KB 4 s, 3 MB minutes), per program, at every reread, with supervisord's socket
#: unanswered meanwhile.
VALUE_MAX = 65536

#: Native-model key holding the proxy parameters (not a supervisord key; never rendered).
PROXY_KEY = "_proxy"

#: Characters that need no quoting in a shlex word (``%`` is handled separately).
_SAFE_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
#: Environment names that non-POSIX shlex reads as one token.
_ENV_KEY = re.compile(r"[A-Za-z0-9_./+\-():]+")
#: Line breaks end a configparser value (text files translate \r to \n).
_LINE_BREAKS = ("\n", "\r", "\0")
_HERE = "%(here)s"


class Raw(str):
    """A command word containing a deliberate supervisord expansion (``%(here)s``)."""

    __slots__ = ()


# ---------------------------------------------------------------------------
# Encoding values for supervisord's parser


def _line_break_problem(text: str) -> str | None:
    if "\0" in text:
        return "contains a NUL character"
    if "\n" in text or "\r" in text:
        return "contains a line break, which a supervisord config value cannot hold"
    return None


def _comment_problem(text: str) -> str | None:
    """configparser cuts a value at ';' or '#' preceded by whitespace."""
    for i, ch in enumerate(text):
        if ch in ";#" and i > 0 and text[i - 1].isspace():
            return (f"contains {text[i - 1:i + 1]!r}: supervisord's config parser reads "
                    "whitespace followed by ';' or '#' as the start of a comment")
    return None


def value_problem(text: str) -> str | None:
    """Why ``text`` cannot be a plain (non-command, non-environment) value, or None."""
    problem = _line_break_problem(text) or _comment_problem(text)
    if problem:
        return problem
    if text != text.strip():
        return "has leading or trailing whitespace, which supervisord strips"
    if _HERE in text:
        return f"contains {_HERE!r}, which supervisord replaces before anything else"
    return None


def encode_value(text: str, key: str) -> str:
    """A plain value: ``%`` doubled; ValueError if supervisord would change it."""
    problem = value_problem(text)
    if problem:
        raise ValueError(f"supervisord {key}= value {text!r} {problem}")
    return text.replace("%", "%%")


def command_word_problem(word: str) -> str | None:
    """Why ``word`` cannot be one argument of ``command``, or None."""
    return _line_break_problem(word)


def encode_word(word: str) -> str:
    """One argv word for ``command``: POSIX-shlex quoted, '%'-escaped, comment-safe.

    ``;``, ``#``, ``'`` and ``%`` are written outside quotes (``\\;``, ``\\#``,
    ``\\'``, ``%%``), so no whitespace ever precedes ``;``/``#`` (configparser
    comments) and ``%%`` is never followed by ``(here)s`` (supervisord's textual
    ``%(here)s`` replacement). Everything else sits inside single quotes.
    """
    if isinstance(word, Raw):
        return str(word)
    problem = command_word_problem(word)
    if problem:
        raise ValueError(f"supervisord command argument {word!r} {problem}")
    if _SAFE_WORD.fullmatch(word):
        return word
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append("'" + "".join(run) + "'")
            run.clear()

    for ch in word:
        if ch in ";#'":
            flush()
            out.append("\\" + ch)
        elif ch == "%":
            flush()
            out.append("%%")
        else:
            run.append(ch)
    flush()
    return "".join(out) or "''"


def encode_command(argv: Sequence[str]) -> str:
    """A ``command=`` value that supervisord splits back into exactly ``argv``."""
    if not argv:
        raise ValueError("supervisord command is empty")
    return " ".join(encode_word(w) for w in argv)


def env_problem(key: str, value: str) -> str | None:
    """Why ``key=value`` cannot be in ``environment=``, or None.

    supervisord splits ``environment`` with non-POSIX shlex: a value must be one
    quoted token (no escapes exist), and leading/trailing quote characters are
    stripped from every value.
    """
    if not _ENV_KEY.fullmatch(key):
        return f"variable name {key!r} cannot be written in supervisord's environment="
    problem = _line_break_problem(value) or _comment_problem(value)
    if problem:
        return f"value of {key} {problem}"
    if _HERE in value:
        return f"value of {key} contains {_HERE!r}, which supervisord replaces"
    if value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
        return (f"value of {key} starts or ends with a quote character, which "
                "supervisord's environment parser strips")
    if "'" in value and '"' in value:
        return (f"value of {key} contains both ' and \", which supervisord's "
                "environment parser cannot represent together")
    return None


def encode_environment(env: Mapping[str, str]) -> str:
    """``K="v",K2='v2'`` (sorted) that ``dict_of_key_value_pairs`` reads back exactly."""
    parts = []
    for key in sorted(env):
        value = str(env[key])
        problem = env_problem(key, value)
        if problem:
            raise ValueError(f"supervisord environment: {problem}")
        q = "'" if '"' in value else '"'
        parts.append(f"{key}={q}{value}{q}".replace("%", "%%"))
    return ",".join(parts)


def render_program(name: str, native: Mapping[str, Any]) -> str:
    """The ``[program:<name>]`` section of a native model."""
    keys = [k for k in KEY_ORDER if k in native]
    keys += sorted(k for k in native if k not in KEY_ORDER and not k.startswith("_"))
    lines = [f"[program:{name}]"]
    for key in keys:
        value = native[key]
        if value is None:
            continue
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", key):
            raise ValueError(f"{key!r} is not a supervisord program key")
        if key == "command":
            text = (encode_command([str(w) if not isinstance(w, Raw) else w for w in value])
                    if isinstance(value, list | tuple) else encode_value(str(value), key))
        elif key == "environment" and isinstance(value, Mapping):
            if not value:
                continue
            text = encode_environment(value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, list | tuple):
            text = encode_value(",".join(str(v) for v in value), key)
        else:
            text = encode_value(str(value), key)
        if key in ("command", "environment") and len(text) > VALUE_MAX:
            # Also what an override wrote: supervisord would parse it for minutes.
            raise ValueError(f"{key}= is {len(text)} characters, more than the {VALUE_MAX} "
                             "procmgmt allows (supervisord parses it in time growing with "
                             "the square of its length)")
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Backend


def _truthy(value: Any) -> bool:
    """A supervisord boolean (``autostart=false``, possibly a string from an override)."""
    return str(value).strip().lower() not in ("false", "0", "no", "off", "none", "")


def _dependents(spec: ProcessSpec, specs: Mapping[str, ProcessSpec]) -> list[str]:
    return dependents_of(specs, spec.name)


def _uses_proxy(spec: ProcessSpec, settings: Settings,
                specs: Mapping[str, ProcessSpec]) -> bool:
    """Proxy when the process only daemonizes, has an initialize, needs root
    before dropping to its user (a negative nice level), or readiness needs it:
    a dependency declares a readiness check (the proxy waits until it passes:
    priorities only order the spawns) or dependents check this process's log
    line or pid file (:func:`procmgmt.backends._proxy.readiness_needs_proxy`)."""
    user = spec.effective_user(settings)
    return (spec.foreground is None or bool(spec.initialize.strip())
            or (user is not None and spec.nice is not None and spec.nice < 0)
            or _proxy.readiness_needs_proxy(spec, specs))


def program_file(name: str) -> str:
    """Where a process's program section lives, relative to its store entry."""
    return f"conf.d/{name}.conf"


def proxy_file(name: str) -> str:
    """Where a process's proxy lives, relative to its store entry."""
    return f"bin/{name}-proxy"


def _nice_command() -> str:
    """``nice`` by absolute path: supervisord looks bare names up in the program's PATH."""
    return shutil.which("nice") or "nice"


class SupervisordBackend(Backend):
    """Generates supervisord program sections; deploys with a procmgmt-owned supervisord."""

    name = "supervisord"
    capabilities = Capabilities(
        prefers="foreground",
        dependencies="native",
        ordering="priority = 1 + max priority of the dependencies",
        user_switching=True,
        user_mode=True,
        tested="run",
        readiness="emulated",
        notes="daemon-only processes run under a generated foreground proxy; readiness: "
              "a dependent's proxy waits until dependencies that declare a check pass "
              "it (generated sh probes; Notify: only the engine waits)",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The ``[program:<name>]`` keys; the proxy's parameters under ``_proxy``.

        ``startsecs=1`` keeps supervisord's crash-loop protection (an early exit
        is BACKOFF, then FATAL after ``startretries``; with 0 a crashing program
        is respawned without delay forever). The activator does not wait out that
        second: it accepts a program that survived a short settle time.
        """
        settings = ctx.settings
        user = spec.effective_user(settings)
        env = dict(spec.environment)
        path = spec.path_value()
        if path:
            env["PATH"] = f"{path}:{SYSTEM_PATH}"
        native: dict[str, Any] = {}
        if _uses_proxy(spec, settings, ctx.specs):
            wrap = spec.foreground is None
            exe = spec.daemon if wrap else spec.foreground
            assert exe is not None, "validation guarantees a daemon or a foreground process"
            args = spec.daemon_args if wrap else spec.foreground_args
            root_first = bool(spec.initialize.strip()) or (spec.nice is not None and spec.nice < 0)
            native["command"] = [Raw(f"{_HERE}/../{proxy_file(spec.name)}")]
            write_pid = _proxy.readiness_pid_file(spec, ctx.specs)
            native[PROXY_KEY] = {
                "name": spec.name,
                "command": [exe, *args],
                "wrap_daemon": wrap,
                "pid_file": spec.derived_pid_file(settings) if wrap or write_pid else None,
                # Created by a proxy that starts as root (as the user, it could not).
                "pid_dir": spec.own_pid_dir(settings)
                if (wrap or write_pid) and (root_first or not user) else None,
                "write_pid_file": write_pid,
                "initialize": spec.initialize,
                "directory": spec.directory,
                "umask": spec.umask,
                "nice": spec.nice,
                "user": user if root_first else None,
                "pid_file_timeout": _proxy.DEFAULT_PID_FILE_TIMEOUT,
                "kill_after": _proxy.DEFAULT_KILL_AFTER,
                "stop_signal": spec.stop_signal,
                **_proxy.readiness_options(spec, ctx.specs, settings, pid_waits=False),
            }
            if user and not root_first:
                native["user"] = user
        else:
            assert spec.foreground is not None
            argv = [spec.foreground, *spec.foreground_args]
            if spec.nice is not None:
                argv = [_nice_command(), "-n", str(spec.nice), *argv]
            native["command"] = argv
            if spec.directory:
                native["directory"] = spec.directory
            if spec.umask:
                native["umask"] = spec.umask
            if user:
                native["user"] = user
        native.update({
            "priority": spec.rank + 1,
            "environment": env,
            "autostart": True,
            "autorestart": "unexpected",
            "startsecs": 1,
            "startretries": 3,
            "stopsignal": spec.stop_signal,
            "stopwaitsecs": 10,
            "stopasgroup": True,
            "killasgroup": True,
            "stdout_logfile": spec.log_file(settings),
            "redirect_stderr": True,
        })
        return native

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The program file and, when the model has proxy parameters, the proxy."""
        files = [File(program_file(spec.name), render_program(spec.name, native))]
        proxy = native.get(PROXY_KEY)
        if proxy:
            opts = _proxy.options_from_native(proxy)
            files.append(File(proxy_file(spec.name), _proxy.generate(opts), mode=0o755))
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Program (and proxy) file locations inside the store entry."""
        extra: dict[str, Any] = {"program": program_file(spec.name), "group": spec.name,
                                 "autostart": _truthy(native.get("autostart", True))}
        if isinstance(native.get("stdout_logfile"), str):
            # procmgmt creates it first, without following a symlink (supervisord would).
            extra["log_file"] = native["stdout_logfile"]
        stderr = native.get("stderr_logfile")
        if not _truthy(native.get("redirect_stderr", False)) and isinstance(stderr, str):
            extra["stderr_log_file"] = stderr  # an override keeps stderr apart
        if native.get(PROXY_KEY):
            extra["proxy"] = proxy_file(spec.name)
            extra["wraps_daemon"] = _proxy.wraps_daemon(native.get(PROXY_KEY))
        return extra

    def validate(self, specs: Sequence[ProcessSpec],
                 ctx: BuildContext) -> list[tuple[str, str, str]]:
        """Spec values that supervisord's config format cannot represent."""
        problems: list[tuple[str, str, str]] = []
        settings = ctx.settings
        for spec in specs:
            def add(fieldname: str, message: str, spec: ProcessSpec = spec) -> None:
                problems.append((spec.name, fieldname, message))

            for key, value in sorted(spec.environment.items()):
                problem = env_problem(key, value)
                if problem:
                    add(f"environment.{key}", problem)
            env_size = sum(len(k) + len(v) + 4 for k, v in spec.environment.items()) \
                + len(spec.path_value() or "") + len(SYSTEM_PATH) + 8
            if env_size > VALUE_MAX:
                add("environment", f"is about {env_size} characters in supervisord's "
                    f"environment=, more than the {VALUE_MAX} procmgmt allows there: "
                    "supervisord parses that value in time growing with the square of its "
                    "length and answers nothing meanwhile (3 MB take minutes); pass large "
                    "data in a file instead")
            command_size = sum(len(w) + 3 for w in (spec.foreground or "", *spec.foreground_args))
            if command_size > VALUE_MAX and not _uses_proxy(spec, settings, ctx.specs):
                add("foreground_process_args", f"the command is about {command_size} "
                    f"characters, more than the {VALUE_MAX} procmgmt allows in supervisord's "
                    "command= (parsed in time growing with the square of its length)")
            if spec.path_value():
                problem = env_problem("PATH", f"{spec.path_value()}:{SYSTEM_PATH}")
                if problem:
                    add("path", problem)
            if _uses_proxy(spec, settings, ctx.specs):
                # The proxy is a shell script: only NUL is impossible there.
                for fieldname, words in (("daemon_args", (spec.daemon or "", *spec.daemon_args)),
                                         ("foreground_process_args",
                                          (spec.foreground or "", *spec.foreground_args))):
                    if any("\0" in w for w in words):
                        add(fieldname, "contains a NUL character")
            else:
                for word in (spec.foreground or "", *spec.foreground_args):
                    problem = command_word_problem(word)
                    if problem:
                        add("foreground_process_args", f"argument {word!r} {problem}")
                if spec.directory:
                    problem = value_problem(spec.directory)
                    if problem:
                        add("directory", f"{spec.directory!r} {problem}")
            user = spec.effective_user(settings)
            if user:
                problem = value_problem(user)
                if problem:
                    add("user", f"{user!r} {problem}")
            problem = value_problem(spec.log_file(settings))
            if problem:
                add("name", f"log file {spec.log_file(settings)!r} {problem}")
            if _dependents(spec, ctx.specs):
                problems.extend(_ready_sh.spec_problems(spec))
        return problems

    def activator(self, settings: Settings) -> SupervisordActivator:
        """A supervisord per (state dir, profile), started on demand."""
        return SupervisordActivator(settings)


# ---------------------------------------------------------------------------
# Activator

#: Linux's sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
UNIX_PATH_MAX = 107

#: supervisor.xmlrpc.Faults codes used here.
FAULT_BAD_NAME = 10
FAULT_NOT_RUNNING = 70
FAULT_ALREADY_STARTED = 60
FAULT_ALREADY_ADDED = 90

_FAILED_STATES = ("BACKOFF", "FATAL", "EXITED")
#: States in which a program still has (or is about to have) a process.
_ACTIVE_STATES = ("STARTING", "RUNNING", "BACKOFF", "STOPPING")


def min_fds(programs: int) -> int:
    """``minfds`` for N programs: about 5 per program plus 64, at least
    supervisord's default 1024, at most the hard RLIMIT_NOFILE (above it
    supervisord refuses to start). Not more: every child closes fds
    3..minfds one by one before exec."""
    wanted = max(1024, 5 * programs + 64)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    return wanted


def min_procs(programs: int) -> int:
    """``minprocs``: supervisord's default 200, or more than N programs (with room
    for proxies' helpers), at most the hard RLIMIT_NPROC."""
    wanted = max(200, 2 * programs + 64)
    _, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    return wanted


#: Environment variable naming the config file of a running supervisord to deploy
#: into (the original's ``SUPERVISORD_CONF_DIR``) instead of procmgmt's own one.
EXTERNAL_CONF_ENV = "PROCMGMT_SUPERVISORD_CONF"

#: Seconds a freshly added program may stay STOPPED before we start it ourselves
#: (autostart normally spawns it on supervisord's next loop iteration).
_AUTOSTART_GRACE = 0.5


@dataclass(frozen=True)
class ExternalSupervisord:
    """What procmgmt needs from the config file of a supervisord it did not start."""

    conf: str
    socket: str
    #: Directory of the ``[include] files=`` glob the program files go into.
    include_dir: str
    #: The glob's file-name part (``*.conf``): each ``<name>.conf`` must match it.
    pattern: str

    @property
    def bin_dir(self) -> str:
        """Proxies: ``bin/`` next to the include dir (``%(here)s/../bin``)."""
        return os.path.join(os.path.dirname(self.include_dir), "bin")


def _unescape_glob(text: str) -> str | None:
    """``glob.escape`` undone (``[*]`` -> ``*``); None when a real wildcard remains."""
    plain = re.sub(r"\[(.)\]", r"\1", text)
    stripped = re.sub(r"\[.\]", "", text)
    return None if any(c in stripped for c in "*?[") else plain


def read_external_config(path: str) -> ExternalSupervisord:
    """Socket and include dir of a supervisord config, read the way supervisord reads
    them: inline ``;``/``#`` comments, ``%(here)s`` (the config's directory) and
    ``%(ENV_X)s`` expanded, include globs relative to the config's directory."""
    conf = os.path.abspath(path)
    here = os.path.dirname(conf)
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    try:
        with open(conf, encoding="utf-8") as f:
            parser.read_file(f)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: cannot read it as a supervisord "
                         f"config: {exc}") from None
    expansions = {"here": here, "host_node_name": os.uname().nodename,
                  **{f"ENV_{k}": v for k, v in os.environ.items()}}

    def get(section: str, key: str) -> str:
        if not parser.has_option(section, key):
            raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: no [{section}] {key}=; procmgmt "
                             "needs the control socket and an include dir to deploy into")
        raw = parser.get(section, key).replace("%(here)s", here)
        try:
            return raw % expansions
        except (KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: [{section}] {key}={raw!r}: "
                             f"cannot expand {exc}") from None

    socket = os.path.join(here, os.path.expanduser(get("unix_http_server", "file")))
    for pattern in get("include", "files").split():
        full = os.path.join(here, pattern)
        directory = _unescape_glob(os.path.dirname(full))
        name_glob = os.path.basename(full)
        if directory is not None and fnmatch.fnmatchcase("procmgmt-program.conf", name_glob):
            return ExternalSupervisord(conf, os.path.normpath(socket),
                                       os.path.normpath(directory), name_glob)
    raise UsageError(f"{EXTERNAL_CONF_ENV}={path}: no [include] files= pattern names a "
                     "directory of '*.conf' files procmgmt could put program files into")


class _Snapshot:
    """One ``getAllProcessInfo`` shared by every probe and status call.

    A probe per program that asks supervisord for its own program every 20 ms
    keeps supervisord's single loop busy answering (N requests per poll round,
    between its spawns). One table, refreshed at most every ``min_age`` seconds
    and never more often than twice the time the last fetch took (with 1000
    programs serializing the table is not free), costs one request per round
    whatever N is. Any request that changes states (add, start, stop) calls
    :meth:`invalidate`: a table fetched before it is never served afterwards.
    """

    def __init__(self, fetch: Callable[[], list[dict[str, Any]]], min_age: float = 0.02) -> None:
        self._fetch = fetch
        self.min_age = min_age
        self._lock = threading.Lock()
        self._infos: dict[str, dict[str, Any]] = {}
        #: Monotonic time at which the request behind ``_infos`` was sent.
        self._at = float("-inf")
        self._took = 0.0
        self._valid_after = float("-inf")

    def invalidate(self) -> None:
        """States changed: the next :meth:`get` fetches anew."""
        self._valid_after = time.monotonic()

    def get(self) -> tuple[dict[str, dict[str, Any]], float]:
        """(group name -> process info, monotonic time the table was requested)."""
        with self._lock:
            now = time.monotonic()
            if self._at <= self._valid_after or now - self._at >= max(self.min_age,
                                                                       2 * self._took):
                infos = self._fetch()
                self._took = time.monotonic() - now
                self._infos = {str(i["group"]): i for i in infos if i.get("name") == i.get("group")}
                self._at = now
            return self._infos, self._at


class SupervisordActivator(Activator):
    """Starts and drives one supervisord per (state dir, profile) over XML-RPC.

    Layout: ``<procmgmt_dir>/supervisord/<profile>/`` holds ``supervisord.conf``,
    ``conf.d/<name>.conf`` and ``bin/<name>-proxy`` symlinks into the store
    entries of the deployed generation. The socket and pid file live in the
    runtime dir, supervisord's own log in the log dir.

    With ``external`` (or ``PROCMGMT_SUPERVISORD_CONF``) the supervisord is
    someone else's, already running: the links go into its include dir (and
    ``bin/`` next to it), and procmgmt never starts or shuts it down. Which
    links are ours is recorded in ``<procmgmt_dir>/supervisord/<profile>/external.json``
    (with the config file, so later switches of the profile find it again).
    """

    #: Every call opens its own XML-RPC connection: safe from several threads.
    parallel_safe = True

    #: Seconds to wait for a program to reach RUNNING (or survive ``settle``).
    start_timeout = 30.0
    #: A program STARTING with a live pid for this long counts as started.
    #: 0: the engine watches every started program concurrently afterwards
    #: (readiness check or grace time), and waiting here, or for
    #: ``startsecs`` (1 s), would cost that time per program.
    settle = 0.0
    #: Seconds to wait for programs to stop (above the default stopwaitsecs=10,
    #: after which supervisord kills).
    stop_timeout = 30.0
    #: Seconds to wait for a fresh supervisord to answer (its first spawn pass
    #: blocks the socket).
    answer_timeout = 60.0
    #: Seconds one "are you there" call may take before it counts as no answer
    #: (a stopped or wedged supervisord accepts the connection and never replies).
    probe_timeout = 5.0

    def __init__(self, settings: Settings, external: str | None = None) -> None:
        super().__init__(settings)
        self.dir = os.path.join(settings.procmgmt_dir, "supervisord", settings.profile)
        self.conf = os.path.join(self.dir, "supervisord.conf")
        tag = f"supervisord-{settings.profile}"
        self.socket_path = os.path.join(settings.runtime_dir, f"{tag}.sock")
        self.pid_file = os.path.join(settings.runtime_dir, f"{tag}.pid")
        self.log_file = os.path.join(settings.log_dir, f"{tag}.log")
        self.conf_d = os.path.join(self.dir, "conf.d")
        self.bin_dir = os.path.join(self.dir, "bin")
        self.record_file = os.path.join(self.dir, "external.json")
        self.external: ExternalSupervisord | None = None
        self._use_external(external if external is not None
                           else os.environ.get(EXTERNAL_CONF_ENV) or None)
        self._snapshot = _Snapshot(self._fetch_table)
        #: Groups supervisord added (and autostarted) itself when it booted with them.
        self._booted: set[str] = set()

    def _fetch_table(self) -> list[dict[str, Any]]:
        """Every program's info, as of *after* supervisord reaped what exited.

        SIGCHLD does not wake supervisord's loop (up to 1 s in ``poll``), and a
        request is answered before that iteration's reaping: alone, it could
        report a program that crashed a moment ago (a zombie) as STARTING and let
        a crash slip through the start grace. The ``getState`` first wakes the
        loop, which reaps; the table is answered in a later iteration."""
        server = self.rpc()
        server.supervisor.getState()
        return list(server.supervisor.getAllProcessInfo())

    def _use_external(self, conf: str | None) -> None:
        """Bind to an external supervisord: the one asked for, else the one this
        profile's programs were deployed into (recorded), else none (our own)."""
        record = self._read_record()
        recorded = record.get("conf") if record.get("names") else None
        if conf is None and recorded is None:
            return
        if conf is not None and recorded is not None \
                and os.path.abspath(conf) != os.path.abspath(str(recorded)):
            raise UsageError(
                f"profile {self.settings.profile} has programs in the supervisord of "
                f"{recorded}, not {conf}: undeploy them there first (with "
                f"{EXTERNAL_CONF_ENV}={recorded})")
        ext = read_external_config(conf if conf is not None else str(recorded))
        if not _SAFE_WORD.fullmatch(ext.include_dir):
            raise UsageError(
                f"include dir {ext.include_dir!r} of {ext.conf} contains characters "
                "supervisord cannot use unquoted in %(here)s (spaces, quotes, %)")
        if len(os.fsencode(ext.socket)) > UNIX_PATH_MAX:
            raise UsageError(f"supervisord socket path {ext.socket!r} is too long")
        self.external = ext
        self.conf = ext.conf
        self.socket_path = ext.socket
        self.conf_d = ext.include_dir
        self.bin_dir = ext.bin_dir

    def _read_record(self) -> dict[str, Any]:
        try:
            with open(self.record_file, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_record(self, names: Sequence[str]) -> None:
        assert self.external is not None
        fsutil.ensure_dir(self.dir)
        fsutil.write_atomic(self.record_file, json.dumps({"conf": self.external.conf,
                                                          "names": sorted(names)}),
                            fsutil.PRIVATE)

    # -- configuration -------------------------------------------------------

    def check_paths(self) -> None:
        """Paths supervisord cannot use, as a UsageError naming the fix."""
        if len(os.fsencode(self.socket_path)) > UNIX_PATH_MAX:
            raise UsageError(
                f"supervisord socket path {self.socket_path!r} is "
                f"{len(os.fsencode(self.socket_path))} bytes; unix sockets allow at most "
                f"{UNIX_PATH_MAX}: use a shorter --runtime-dir or --state-dir")
        # %(here)s (the conf.d dir) is substituted unquoted into proxy commands.
        if not _SAFE_WORD.fullmatch(self.dir) or any(c in self.dir for c in "*?["):
            raise UsageError(
                f"supervisord directory {self.dir!r} contains characters supervisord "
                "cannot use unquoted (spaces, quotes, %, glob characters): choose "
                "another --lib-dir or --state-dir")
        for path in (self.socket_path, self.pid_file, self.log_file):
            problem = value_problem(path)
            if problem:
                raise UsageError(f"supervisord cannot use path {path!r}: it {problem}")

    def base_config(self, programs: int, nodaemon: bool = False) -> str:
        """The ``supervisord.conf``: socket only (no TCP), include of conf.d."""
        def v(text: str) -> str:
            return encode_value(text, "path")

        lines = [
            "; Generated by procmgmt: the supervisord of profile "
            f"{self.settings.profile}. Do not edit: procmgmt rewrites it.",
            "[supervisord]",
            f"logfile={v(self.log_file)}",
            f"pidfile={v(self.pid_file)}",
            f"childlogdir={v(self.settings.tmp_dir)}",
            f"identifier=procmgmt-{self.settings.profile}",
            f"minfds={min_fds(programs)}",
            f"minprocs={min_procs(programs)}",
            f"nodaemon={'true' if nodaemon else 'false'}",
        ]
        if os.geteuid() == 0:
            # Says "root on purpose" (otherwise supervisord logs a CRIT line).
            lines.append("user=root")
        lines += [
            "",
            "[unix_http_server]",
            f"file={v(self.socket_path)}",
            "chmod=0700",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{v(self.socket_path)}",
            "",
            "[include]",
            f"files = {v(glob.escape(os.path.join(self.dir, 'conf.d')))}/*.conf",
            "",
        ]
        return "\n".join(lines)

    def _write_base_config(self, programs: int, nodaemon: bool = False) -> None:
        self.check_paths()
        for d in (self.settings.runtime_dir, self.settings.log_dir, self.settings.tmp_dir):
            fsutil.ensure_dir(d)
        # conf.d and bin say what supervisord (maybe root) runs: never writable by
        # others, whatever the caller's umask or an older version left.
        for d in (os.path.dirname(self.dir), self.dir, os.path.join(self.dir, "conf.d"),
                  os.path.join(self.dir, "bin")):
            fsutil.ensure_dir(d, enforce=True)
        # supervisord opens its log before it sets its umask: create it ourselves.
        os.close(fsutil.open_file(self.log_file, fsutil.LOG, os.O_WRONLY | os.O_APPEND))
        fsutil.write_atomic(self.conf, self.base_config(programs, nodaemon), fsutil.FILE)

    def link(self, gen: Generation | None) -> bool:
        """Make conf.d/ and bin/ hold exactly ``gen``'s program and proxy files;
        True when anything changed.

        Our own conf.d and bin are procmgmt's alone. An external supervisord's
        include dir is shared: only entries of names this profile linked before
        (``external.json``) are replaced or removed, and an entry of someone
        else's under a name we need is an error, not overwritten."""
        wanted: dict[str, str] = {}
        names = [proc.name for proc in gen.processes] if gen else []
        for proc in gen.processes if gen else ():
            extra = proc.extra
            program = str(extra.get("program", program_file(proc.name)))
            wanted[os.path.join(self.conf_d, f"{proc.name}.conf")] = os.path.join(proc.path,
                                                                                program)
            if extra.get("proxy"):
                wanted[os.path.join(self.bin_dir, f"{proc.name}-proxy")] = os.path.join(
                    proc.path, str(extra["proxy"]))
        owned: set[str] | None = None
        if self.external is not None:
            owned = set(self._read_record().get("names") or ())
            mine = {os.path.join(d, f) for n in owned
                    for d, f in ((self.conf_d, f"{n}.conf"), (self.bin_dir, f"{n}-proxy"))}
            for path, target in wanted.items():
                if os.path.lexists(path) and path not in mine \
                        and not (os.path.islink(path) and os.readlink(path) == target):
                    raise DeployError(f"{path} exists and is not procmgmt's (profile "
                                      f"{self.settings.profile}): remove or rename it")
            bad = [n for n in names if not fnmatch.fnmatchcase(f"{n}.conf",
                                                               self.external.pattern)]
            if bad:
                raise DeployError(f"{self.external.conf} includes only "
                                  f"{self.external.pattern} files, not {', '.join(bad)}.conf")
            # Recorded before linking: a crash in between leaves nothing unowned.
            self._write_record(sorted(owned | set(names)))
        changed = False
        for d in (self.conf_d, self.bin_dir):
            fsutil.ensure_dir(d)
            for entry in os.listdir(d):
                path = os.path.join(d, entry)
                if path in wanted:
                    continue
                if owned is not None and not (
                        os.path.islink(path)
                        and any(entry in (f"{n}.conf", f"{n}-proxy") for n in owned)):
                    continue
                os.unlink(path)
                changed = True
        for path, target in wanted.items():
            if os.path.islink(path) and os.readlink(path) == target:
                continue
            tmp = path + ".new"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.replace(tmp, path)
            changed = True
        if self.external is not None:
            if names:
                self._write_record(names)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.record_file)
        return changed

    # -- talking to supervisord ----------------------------------------------

    def rpc(self, timeout: float | None = None) -> Any:
        """An XML-RPC proxy over the unix socket (supervisor's own transport)."""
        from supervisor.xmlrpc import SupervisorTransport

        transport = SupervisorTransport(None, None, f"unix://{self.socket_path}")
        if timeout is not None:
            # supervisor's unix-socket connection ignores every timeout setting (it
            # makes a blocking socket in connect()): set it on the socket itself, or a
            # supervisord that accepts but never replies blocks us forever.
            make = transport._get_connection

            def get_connection() -> Any:
                conn = make()
                connect = conn.connect

                def connect_with_timeout() -> None:
                    connect()
                    conn.sock.settimeout(timeout)

                conn.connect = connect_with_timeout
                return conn

            transport._get_connection = get_connection
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self, timeout: float | None = None) -> bool:
        """True when our supervisord answers on its socket (within ``timeout``)."""
        if not os.path.exists(self.socket_path):
            return False
        try:
            state = self.rpc(timeout).supervisor.getState()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return False
        return bool(state.get("statename") in ("RUNNING", "RESTARTING"))

    def profile_supervisords(self) -> list[int]:
        """PIDs of the supervisord processes of this profile, answering or not.

        A supervisord still reading a huge configuration has no socket yet, so
        "does not answer" does not mean "not running": the process table (every
        process whose command line is ``... -c <our config>``) and the pid file
        are what tell. Without ``/proc`` only the pid file is known."""
        found = set()
        pid = self.supervisord_pid()
        if pid is not None and pid > 1 and pid_alive(pid) and _reads_config(pid, self.conf) \
                is not False:
            found.add(pid)
        try:
            entries = os.listdir("/proc")
        except OSError:
            return sorted(found)
        for entry in entries:
            if entry.isdigit() and int(entry) != os.getpid() \
                    and _reads_config(int(entry), self.conf):
                found.add(int(entry))
        return sorted(found)

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        """Held while deciding whether to start this profile's supervisord and starting
        it: two procmgmt commands must never both start one."""
        fsutil.ensure_dir(self.dir)
        # 0600: a lock others can open, they can hold (and so block every start).
        fd = fsutil.open_file(os.path.join(self.dir, "start.lock"), fsutil.PRIVATE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _start_needed(self) -> bool:
        """True when no supervisord of this profile exists (the caller holds the start
        lock and starts one). One that exists but does not answer yet is waited for,
        never doubled: a second supervisord would read the same files, fight over
        the socket and start every program twice."""
        if self.running(timeout=self.probe_timeout):
            return False
        pids = self.profile_supervisords()
        if not pids:
            return True
        self._wait_answering(pids=pids)
        return False

    def supervisord_pid(self) -> int | None:
        """The pid from supervisord's pid file, if any."""
        try:
            with open(self.pid_file, encoding="ascii") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def supervisord_command(self, nodaemon: bool = False) -> list[str]:
        """How supervisord is started: this interpreter (no PATH lookup), UTF-8 mode
        so non-ASCII config values are read the way we wrote them."""
        cmd = [sys.executable, "-X", "utf8", "-m", "supervisor.supervisord", "-c", self.conf]
        if nodaemon:
            cmd.append("-n")
        return cmd

    def _wait_answering(self, proc: subprocess.Popen[bytes] | None = None,
                        pids: Sequence[int] = ()) -> None:
        deadline = time.monotonic() + self.answer_timeout
        while time.monotonic() < deadline:
            if self.running(timeout=max(0.1, min(self.probe_timeout,
                                                 deadline - time.monotonic()))):
                return
            if proc is not None and proc.poll() is not None and proc.returncode != 0:
                break
            if pids and not any(pid_alive(p) for p in pids):
                break
            time.sleep(0.01)
        if pids:
            listed = " ".join(str(p) for p in pids)
            raise DeployError(
                f"the supervisord of profile {self.settings.profile} (pid {listed}) runs but "
                f"did not answer on {self.socket_path} within {self.answer_timeout:g} s; it "
                f"may still be reading a very large configuration (see {self.log_file}). "
                "procmgmt never starts a second supervisord for a profile: wait and retry, "
                f"or stop it ('kill {listed}') and retry")
        raise DeployError(f"supervisord ({self.conf}) did not answer on {self.socket_path}; "
                          f"see {self.log_file}")

    def start_supervisord(self) -> None:
        """Start our supervisord (it daemonizes) and wait until it answers."""
        env = _supervisord_environment()
        proc = subprocess.Popen(self.supervisord_command(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env, start_new_session=True, cwd="/",
                                umask=fsutil.SERVICE_UMASK)
        try:
            _, err = proc.communicate(timeout=self.answer_timeout)
        except subprocess.TimeoutExpired:
            # Whatever of it runs (the foreground process, or a daemon it forked
            # already) is ours from this call: leave none behind.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            for pid in self.profile_supervisords():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.communicate()
            raise DeployError(f"supervisord did not daemonize within {self.answer_timeout:g} s "
                              f"(reading {self.conf})") from None
        if proc.returncode != 0:
            raise DeployError(f"supervisord failed to start (exit status {proc.returncode}): "
                              f"{err.decode(errors='replace').strip()}")
        self._wait_answering()

    # -- Activator -----------------------------------------------------------

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Bring supervisord up (with ``old``'s programs, as before a reboot), then
        switch conf.d to ``new`` and reread it: running programs are untouched.

        A first deploy (nothing before, supervisord not running) of a generation
        without dependency edges boots supervisord with ``new``'s programs linked:
        it spawns them all in its first pass, without an add request per program
        (and without re-parsing every file in a ``reloadConfig``); :meth:`start`
        then only watches them. With edges, the engine starts each program once
        its dependencies are ready, so supervisord must not start them itself.
        An external supervisord is never started: it must be running."""
        self._booted = set()
        self._snapshot.invalidate()
        if self.external is not None:
            if not self.running():
                raise DeployError(
                    f"the supervisord of {self.conf} ({EXTERNAL_CONF_ENV}) does not answer "
                    f"on {self.socket_path}: start it first; procmgmt never starts or "
                    "shuts down a supervisord it did not start")
            if old is not None and old.processes and not self._read_record().get("names"):
                raise UsageError(
                    f"profile {self.settings.profile} runs its programs in its own "
                    f"supervisord: undeploy them before deploying into {self.conf}")
            self.link(new)
            self._reload()
            return
        programs = max(len(new.processes), len(old.processes) if old else 0)
        with self._start_lock():
            start = self._start_needed()
            if start:
                self._write_base_config(programs)
                boot = (old is None or not old.processes) and bool(new.processes) \
                    and not any(p.dependencies for p in new.processes)
                self.link(new if boot else old)
                self.start_supervisord()
                if boot:
                    self._booted = {_group(p) for p in new.processes}
                    return
        if not start:
            self._warn_if_fds_short(programs)
            self._write_base_config(programs)
        self.link(new)
        self._reload()

    def _reload(self) -> None:
        """``reloadConfig``: supervisord reads the program files anew (``reread``)."""
        fail_point("reload")
        try:
            self.rpc().supervisor.reloadConfig()
        except xmlrpc.client.Fault as fault:
            # e.g. a user= that does not exist (yet): supervisord parses it here.
            raise DeployError(f"supervisord rejected the program files in {self.conf_d}: "
                              f"{fault.faultString}") from None

    def _warn_if_fds_short(self, programs: int) -> None:
        try:
            with open(self.conf, encoding="utf-8") as f:
                m = re.search(r"^minfds=(\d+)$", f.read(), re.M)
        except OSError:
            return
        if m and int(m.group(1)) < min_fds(programs):
            log.warning("supervisord of profile %s runs with minfds=%s but %d programs want "
                        "%d; it takes effect when supervisord restarts",
                        self.settings.profile, m.group(1), programs, min_fds(programs))

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """Stop the program's group (waiting) and forget it; absent is fine (also
        when supervisord is not running: then nothing of it runs)."""
        server = self.rpc()
        name = _group(proc)
        self._booted.discard(name)
        self._snapshot.invalidate()
        try:
            # wait=False and poll: a waiting stop is answered from supervisord's main
            # loop, whose 1-s poll timeout SIGCHLD does not cut short (about 1 s per
            # stop); every request of ours wakes the loop, which then reaps at once.
            server.supervisor.stopProcessGroup(name, False)
        except OSError:
            if self.running():
                raise
            return
        except xmlrpc.client.Fault as fault:
            if fault.faultCode not in (FAULT_BAD_NAME, FAULT_NOT_RUNNING):
                raise DeployError(f"supervisord could not stop {name}: {fault.faultString}") \
                    from None
        else:
            self._wait_stopped(server, [name])
        try:
            server.supervisor.removeProcessGroup(name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != FAULT_BAD_NAME:
                raise DeployError(f"supervisord could not remove {name}: {fault.faultString}") \
                    from None
        self._snapshot.invalidate()

    def _wait_stopped(self, server: Any, names: Sequence[str] | None) -> None:
        """Poll until the named groups (None: all) have no live process."""
        deadline = time.monotonic() + self.stop_timeout
        while True:
            if names is None:
                infos = server.supervisor.getAllProcessInfo()
            else:
                # One program's info, not all N: with 1000 programs, stops running in
                # parallel that each poll the whole table keep supervisord busy
                # serializing it (undeploy grew quadratically).
                infos = []
                for name in names:
                    try:
                        infos.append(server.supervisor.getProcessInfo(f"{name}:{name}"))
                    except xmlrpc.client.Fault as fault:
                        if fault.faultCode != FAULT_BAD_NAME:
                            raise
            busy = [i["group"] for i in infos
                    if i.get("statename") in _ACTIVE_STATES
                    and (names is None or i.get("group") in names)]
            if not busy:
                return
            if time.monotonic() > deadline:
                raise DeployError(f"supervisord did not stop {', '.join(sorted(busy))} "
                                  f"within {self.stop_timeout:g} s")
            time.sleep(0.02)

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool]:
        """Add the group (autostart spawns it) unless supervisord booted with it,
        start it when it does not autostart, and return a probe: True once it runs
        (or is STARTING with a pid for ``settle`` s), raising when it failed."""
        name = _group(proc)
        autostart = proc.extra.get("autostart")
        if name not in self._booted:
            try:
                self.rpc().supervisor.addProcessGroup(name)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode == FAULT_BAD_NAME:
                    raise DeployError(f"supervisord does not know program {name}; "
                                      f"is {self.conf_d} linked?") from None
                if fault.faultCode != FAULT_ALREADY_ADDED:
                    raise DeployError(f"supervisord could not add {name}: "
                                      f"{fault.faultString}") from None
                autostart = None  # added before: maybe stopped since
            self._snapshot.invalidate()
        if autostart is not True:
            # Not autostarted (overridden, or an older manifest that does not say).
            self._start_group(name)
        return self._started_probe(name, time.monotonic())

    def _start_group(self, name: str) -> None:
        try:
            self.rpc().supervisor.startProcessGroup(name, False)
        except xmlrpc.client.Fault as fault:
            # Processes already spawned (autostart) are skipped by supervisord.
            if fault.faultCode != FAULT_ALREADY_STARTED:
                raise self._start_failed(name, fault.faultString) from None
        self._snapshot.invalidate()

    def _started_probe(self, name: str, since: float) -> Callable[[], bool]:
        """Non-blocking: has ``name`` started (from the shared process table)?"""
        deadline = since + self.start_timeout
        starting_since: list[float] = []
        kicked: list[bool] = []

        def probe() -> bool:
            try:
                infos, at = self._snapshot.get()
            except (OSError, xmlrpc.client.ProtocolError) as exc:
                raise DeployError(f"supervisord ({self.socket_path}) stopped answering while "
                                  f"{name} started: {exc}") from None
            info = infos.get(name)
            now = time.monotonic()
            if info is None:
                if at > since:
                    raise DeployError(f"supervisord has no program {name} after adding it")
                return False
            state = info.get("statename")
            if state == "RUNNING":
                return True
            if state in _FAILED_STATES:
                raise self._start_failed(name, str(info.get("spawnerr") or state))
            if state == "STARTING" and info.get("pid"):
                if not starting_since:
                    starting_since.append(now)
                return now - starting_since[0] >= self.settle
            if state == "STOPPED" and not kicked and at > since + _AUTOSTART_GRACE:
                # autostart did not spawn it (someone stopped it right away?): start it.
                kicked.append(True)
                self._start_group(name)
            if now > deadline:
                raise self._start_failed(name, f"still {state} after {self.start_timeout:g} s")
            return False

        return probe

    def _start_failed(self, name: str, reason: str) -> DeployError:
        tail = ""
        try:
            text, _, _ = self.rpc().supervisor.tailProcessStdoutLog(name, 0, 2000)
            lines = [ln for ln in str(text).splitlines() if ln.strip()][-10:]
            if lines:
                tail = "\n  last lines of its log:\n    " + "\n    ".join(lines)
        except (OSError, xmlrpc.client.Fault):
            pass
        return DeployError(f"supervisord program {name} failed to start: {reason}{tail}")

    def diagnose(self, gen: Generation, proc: DeployedProcess) -> str:
        """The last lines supervisord captured from the program."""
        try:
            text, _, _ = self.rpc().supervisor.tailProcessStdoutLog(_group(proc), 0, 2000)
        except (OSError, xmlrpc.client.Fault):
            return ""
        lines = [ln for ln in str(text).splitlines() if ln.strip()][-10:]
        return ("last lines of its log:\n    " + "\n    ".join(lines)) if lines else ""

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """The program's log files as its manifest records them (they stay where they are
        while it is stopped and supervisord forgets the program); otherwise (an override
        with ``AUTO``) the ones supervisord reports."""
        files = [str(f) for f in (proc.extra.get("log_file"), proc.extra.get("stderr_log_file"))
                 if isinstance(f, str) and f.startswith("/")]
        if not files:
            try:
                info = self.rpc().supervisor.getProcessInfo(f"{_group(proc)}:{_group(proc)}")
            except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
                info = {}
            files = [str(info[k]) for k in ("stdout_logfile", "stderr_logfile")
                     if str(info.get(k) or "").startswith("/")]
        return LogSource(files=tuple(dict.fromkeys(files)))

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """Running (RUNNING or STARTING) and the pid supervisord tracks (the proxy's,
        for a wrapped daemon: the daemon's pid is in the detail)."""
        name = _group(proc)
        try:
            infos, _ = self._snapshot.get()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return ProcessStatus(name, False, detail="supervisord is not running")
        info = infos.get(name)
        if info is None:
            return ProcessStatus(name, False, detail=f"supervisord has no program {name}")
        state = str(info.get("statename"))
        pid = int(info.get("pid") or 0) or None
        detail = state
        if proc.extra.get("proxy") and proc.pid_file:
            verdict = pid_verdict(proc, self.settings)
            if verdict.trusted and verdict.pid != pid:
                detail += f" (proxy of daemon pid {verdict.pid})"
            elif verdict.refused:
                detail += f" ({verdict.detail})"
        return ProcessStatus(name, state in ("RUNNING", "STARTING"), pid, detail)

    def finish(self, new: Generation, old: Generation | None) -> None:
        """An empty generation leaves nothing to supervise: shut supervisord down.
        An external one keeps running; its include dir gets exactly ``new``'s
        files of ours (after an undone first deploy: none)."""
        if self.external is not None:
            if self.running() and self.link(new):
                self._reload()
            return
        if not new.processes:
            self.shutdown()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop all programs first (a ``shutdown`` with programs running stops one
        group per 1-s poll), then supervisord; wait until its pid is gone."""
        if self.external is not None:
            raise UsageError(f"the supervisord of {self.conf} is not procmgmt's: "
                             "procmgmt does not shut it down")
        if not self.running():
            return
        pid = self.supervisord_pid()
        server = self.rpc()
        with contextlib.suppress(xmlrpc.client.Fault):
            server.supervisor.stopAllProcesses(False)
            self._wait_stopped(server, None)
        with contextlib.suppress(xmlrpc.client.Fault, OSError):
            server.supervisor.shutdown()
        deadline = time.monotonic() + timeout
        while pid is not None and pid_alive(pid):
            if time.monotonic() > deadline:
                raise DeployError(f"supervisord (pid {pid}) did not exit within {timeout:g} s")
            time.sleep(0.05)

    def run_stateless(self, gen: Generation) -> int:
        """supervisord in the foreground with ``gen``'s programs until interrupted
        (SIGINT/SIGTERM are forwarded; supervisord stops its programs and exits)."""
        if self.external is not None:
            raise UsageError(f"'procmgmt run' starts a supervisord of its own; unset "
                             f"{EXTERNAL_CONF_ENV} (the profile's programs are in {self.conf})")
        if self.running() or self.profile_supervisords():
            raise UsageError(f"the supervisord of profile {self.settings.profile} is already "
                             "running; use another --profile or stop it first")
        self._write_base_config(len(gen.processes), nodaemon=True)
        self.link(gen)
        # Own session: a terminal's Ctrl-C reaches only us, and we stop the programs
        # first (supervisord's own shutdown with programs running is slow).
        child = subprocess.Popen(self.supervisord_command(nodaemon=True),
                                 env=_supervisord_environment(), stdin=subprocess.DEVNULL,
                                 start_new_session=True, umask=fsutil.SERVICE_UMASK)

        def forward(signum: int, frame: object) -> None:
            try:
                self.shutdown()
            except (OSError, DeployError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)
            if child.poll() is None and not self.running():
                # Not answering (e.g. still in its first spawn pass): plain signal.
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

        previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return child.wait()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _reads_config(pid: int, conf: str) -> bool | None:
    """Whether process ``pid`` is a supervisord started with ``-c conf``; None when
    its command line cannot be read (no ``/proc``, or gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    target = os.fsencode(conf)
    return any(a in (b"-c", b"--configuration") and b == target
               for a, b in itertools.pairwise(argv)) \
        and any(b"supervisord" in a for a in argv)


def run_stateless(settings: Settings, gen: Generation) -> int:
    """``procmgmt run``: supervisord in the foreground with ``gen``'s programs."""
    return SupervisordActivator(settings).run_stateless(gen)


def _group(proc: DeployedProcess) -> str:
    return str(proc.extra.get("group") or proc.name)


def _supervisord_environment() -> dict[str, str]:
    """What supervisord (and so every program) inherits: PATH, locale, HOME, TZ.

    Not the caller's whole environment: programs would otherwise depend on
    whichever shell happened to start supervisord first.
    """
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.setdefault("PATH", SYSTEM_PATH)
    # supervisord must import the very supervisor package procmgmt uses, also when
    # that one comes from PYTHONPATH rather than the interpreter's site-packages.
    import supervisor

    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(supervisor.__file__)))
    if pkg_parent not in sys.path[1:] or os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = pkg_parent
    return env


__all__ = [
    "Raw",
    "SupervisordActivator",
    "SupervisordBackend",
    "encode_command",
    "encode_environment",
    "encode_value",
    "encode_word",
    "run_stateless",
]
