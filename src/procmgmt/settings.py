"""Shared settings: one table maps every command-line flag to its PROCMGMT_* variable.

nix-processmgmt repeated its option parsing in every tool and the copies
drifted (the spool/lock/lib dirs overwrote the cache dir, the runtime dir
variable set the state dir). Here :data:`FIELDS` is the single source: the
CLI builds its options from it and :func:`resolve` applies it, with the
precedence command line > environment > derived default.
"""

from __future__ import annotations

import grp
import json
import math
import os
import pwd
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from procmgmt.errors import UsageError

DEFAULT_PROFILE = "processes"
DEFAULT_PROCESS_MANAGER = "supervisord"
#: Seconds a model may take to evaluate: generous for any real model, and a
#: hang (a FIFO, a network call, an endless loop) still ends with a message.
DEFAULT_MODEL_TIMEOUT = 60.0
#: Rotated log files kept when --log-max-bytes is set and --log-backups is not.
DEFAULT_LOG_BACKUPS = 5


@dataclass(frozen=True)
class SettingField:
    """One setting: attribute name, long flag, environment variable, kind and help.

    The shared settings (:data:`FIELDS`) have a flag and a :class:`Settings`
    attribute. A backend's own settings (``Backend.own_settings``) are
    environment variables only (``flag`` None): they are listed with the
    others (``--help``, docs/backends.md), checked by :func:`resolve`, and a
    backend reads them with :meth:`read`, never with ``os.environ.get``."""

    attr: str
    flag: str | None
    env: str
    kind: str  # "path", "bool", "str", "json", "seconds", "bytes", "count"
    help: str
    short: str | None = None
    #: What :meth:`read` returns when the variable is unset (or empty, see keep_empty).
    default: Any = None
    #: An empty value is a value (a unit name prefix may be empty), not "unset".
    keep_empty: bool = False

    def describe_default(self) -> str:
        """The default as a user writes it ("1"/"0" for a boolean), "" without one."""
        if self.default is None:
            return ""
        if isinstance(self.default, bool):
            return "1" if self.default else "0"
        return str(self.default)

    def read(self, environ: Mapping[str, str] | None = None) -> Any:
        """The value of the variable in ``environ`` (default: this process's
        environment), parsed like every setting of its kind; :attr:`default` when unset."""
        env = os.environ if environ is None else environ
        raw = env.get(self.env)
        if raw is None or (raw == "" and not self.keep_empty):
            return self.default
        return _parse_value(self, raw, self.env)


FIELDS: tuple[SettingField, ...] = (
    SettingField("state_dir", "--state-dir", "PROCMGMT_STATE_DIR", "path",
                 "root of all mutable state (default /var as root, "
                 "$XDG_STATE_HOME/procmgmt otherwise)"),
    SettingField("runtime_dir", "--runtime-dir", "PROCMGMT_RUNTIME_DIR", "path",
                 "pid files and sockets (default /run for /var, else STATE_DIR/run)"),
    SettingField("log_dir", "--log-dir", "PROCMGMT_LOG_DIR", "path",
                 "log files (default STATE_DIR/log)"),
    SettingField("tmp_dir", "--tmp-dir", "PROCMGMT_TMP_DIR", "path",
                 "temporary files (default /tmp for /var, else STATE_DIR/tmp)"),
    SettingField("cache_dir", "--cache-dir", "PROCMGMT_CACHE_DIR", "path",
                 "caches (default STATE_DIR/cache)"),
    SettingField("spool_dir", "--spool-dir", "PROCMGMT_SPOOL_DIR", "path",
                 "spool files (default STATE_DIR/spool)"),
    SettingField("lock_dir", "--lock-dir", "PROCMGMT_LOCK_DIR", "path",
                 "lock files (default STATE_DIR/lock)"),
    SettingField("lib_dir", "--lib-dir", "PROCMGMT_LIB_DIR", "path",
                 "persistent service state; procmgmt keeps its store and profiles in "
                 "LIB_DIR/procmgmt (default STATE_DIR/lib)"),
    SettingField("force_disable_user_change", "--force-disable-user-change",
                 "PROCMGMT_FORCE_DISABLE_USER_CHANGE", "bool",
                 "never create users or switch to them (automatic when not root)"),
    SettingField("process_manager", "--process-manager", "PROCMGMT_PROCESS_MANAGER", "str",
                 f"backend to deploy with (default {DEFAULT_PROCESS_MANAGER})", short="-P"),
    SettingField("profile", "--profile", "PROCMGMT_PROFILE", "str",
                 f"name of the profile holding the generations (default {DEFAULT_PROFILE})",
                 short="-p"),
    SettingField("extra_params", "--extra-params", "PROCMGMT_EXTRA_PARAMS", "json",
                 "JSON object of extra model parameters (settings.extra_params)"),
    SettingField("ids_file", "--ids", "PROCMGMT_IDS", "path",
                 "ids file written by 'procmgmt id-assign' (settings.ids)"),
    SettingField("model_timeout", "--model-timeout", "PROCMGMT_MODEL_TIMEOUT", "seconds",
                 "time limit in seconds for evaluating the model and calling its override "
                 f"functions (default {DEFAULT_MODEL_TIMEOUT:g})"),
    SettingField("log_max_bytes", "--log-max-bytes", "PROCMGMT_LOG_MAX_BYTES", "bytes",
                 "rotate a process's log file once it holds this much (e.g. 10M, 512K; 0: "
                 "never), where the backend writes log files: supervisord natively, the "
                 "sysvinit and bsdrc scripts through a rotating writer; systemd logs to the "
                 "journal "
                 "(default: supervisord's own 50MB, no rotation by the scripts)"),
    SettingField("log_backups", "--log-backups", "PROCMGMT_LOG_BACKUPS", "count",
                 "rotated log files kept (FILE.1 ... FILE.N) when logs rotate; 0 keeps none "
                 f"(default {DEFAULT_LOG_BACKUPS}, supervisord's own 10 when "
                 "--log-max-bytes is not set either)"),
)

FIELDS_BY_ATTR = {f.attr: f for f in FIELDS}


def backend_fields() -> dict[str, tuple[SettingField, ...]]:
    """Backend name -> the settings it declares (``Backend.own_settings``), for every
    registered backend that declares any: the rest of the one settings table."""
    from procmgmt.backends import registry  # at call time: every backend imports this module

    return {name: cls.own_settings for name, cls in registry().items() if cls.own_settings}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Resolved settings passed to constructors, models, backends and the engine."""

    state_dir: str
    runtime_dir: str
    log_dir: str
    tmp_dir: str
    cache_dir: str
    spool_dir: str
    lock_dir: str
    lib_dir: str
    force_disable_user_change: bool
    process_manager: str
    profile: str
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    calling_user: str = "root"
    calling_group: str = "root"
    #: IDs assigned by ``procmgmt id-assign`` (resource -> instance -> id).
    ids: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: The ids file ``ids`` was read from, if any.
    ids_file: str | None = None
    #: True when the backend was chosen explicitly (flag or variable), not defaulted.
    process_manager_given: bool = False
    #: Time limit (seconds) for evaluating the model and calling its override functions.
    model_timeout: float = DEFAULT_MODEL_TIMEOUT
    #: Rotate log files the backend writes at this size (None: the backend's default,
    #: 0: never).
    log_max_bytes: int | None = None
    #: Rotated log files kept (None: :data:`DEFAULT_LOG_BACKUPS`, or the manager's own
    #: default when ``log_max_bytes`` is not set either).
    log_backups: int | None = None

    def log_rotation(self) -> tuple[int, int] | None:
        """(max bytes, backups) when log files are to be rotated by size, else None."""
        if not self.log_max_bytes:
            return None
        return self.log_max_bytes, (DEFAULT_LOG_BACKUPS if self.log_backups is None
                                    else self.log_backups)

    @property
    def procmgmt_dir(self) -> str:
        """Where procmgmt keeps its store, profiles and journal."""
        return os.path.join(self.lib_dir, "procmgmt")

    @property
    def store_dir(self) -> str:
        """The content-addressed store."""
        return os.path.join(self.procmgmt_dir, "store")

    @property
    def profiles_dir(self) -> str:
        """Profiles and their numbered generation links."""
        return os.path.join(self.procmgmt_dir, "profiles")

    @property
    def pid_parent_dir(self) -> str:
        """Root-owned parent (0755) of the per-service directories of processes
        that switch user: ``<runtime dir>/procmgmt-pid``."""
        return os.path.join(self.runtime_dir, "procmgmt-pid")

    def pid_dir(self, name: str) -> str:
        """The directory of instance ``name``'s pid file (and log file) when it
        switches user: its own, owned by that user (0755), inside
        :attr:`pid_parent_dir`. Never a sticky shared directory such as /tmp,
        where any local user could plant a pid file or a symlink first."""
        return os.path.join(self.pid_parent_dir, name)

    def pid_file(self, name: str) -> str:
        """``<pid_dir(name)>/<name>.pid``: the pid file of a process that switches user."""
        return os.path.join(self.pid_dir(name), f"{name}.pid")

    @property
    def privileged(self) -> bool:
        """True when processes may run as other users."""
        return not self.force_disable_user_change

    def with_process_manager(self, name: str) -> Settings:
        """A copy targeting another backend."""
        return replace(self, process_manager=name)

    def dirs(self) -> dict[str, str]:
        """The directory settings by attribute name."""
        return {f.attr: getattr(self, f.attr) for f in FIELDS
                if f.kind == "path" and f.attr.endswith("_dir")}


def _is_root() -> bool:
    return os.geteuid() == 0


def default_state_dir(environ: Mapping[str, str]) -> str:
    """/var for root; the XDG state directory of the user otherwise."""
    if _is_root():
        return "/var"
    xdg = environ.get("XDG_STATE_HOME")
    base = xdg if xdg else os.path.join(environ.get("HOME") or str(Path.home()), ".local", "state")
    return os.path.join(base, "procmgmt")


def _parse_value(f: SettingField, raw: Any, source: str) -> Any:
    if f.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise UsageError(f"{source}: expected a boolean (1/0, true/false), got {raw!r}")
    if f.kind == "json":
        if isinstance(raw, Mapping):
            return dict(raw)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{source}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise UsageError(f"{source}: expected a JSON object such as '{{\"mode\": \"daemon\"}}'")
        return value
    if f.kind == "seconds":
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise UsageError(f"{source}: expected a positive number of seconds, got {raw!r}")
        return seconds
    if f.kind in ("bytes", "count"):
        return _parse_size(f, raw, source)
    if f.kind == "path":
        text = str(raw)
        if not text:
            raise UsageError(f"{source}: must not be empty")
        return os.path.abspath(os.path.expanduser(text))
    return str(raw)


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def _parse_size(f: SettingField, raw: Any, source: str) -> int:
    """A byte size ("10M", "512K", "1G", "4096"; KB/MB/GB too) or a count, 0 or more."""
    text = str(raw).strip().upper()
    units = _SIZE_UNITS if f.kind == "bytes" else {"": 1}
    match = re.fullmatch(r"(\d+)\s*([KMG]?)B?" if f.kind == "bytes" else r"(\d+)()", text)
    if match is None or match.group(2) not in units:
        what = "a size in bytes such as 10M, 512K or 4096" if f.kind == "bytes" \
            else "a whole number, 0 or more"
        raise UsageError(f"{source}: expected {what}, got {raw!r}")
    return int(match.group(1)) * units[match.group(2)]


def resolve(
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from command-line values (attr -> value, None = not given) and the environment.

    Derivation follows nix-processmgmt: runtime = STATE/run (``/run`` for
    ``/var``), tmp = ``/tmp`` for ``/var`` else STATE/tmp, everything else
    STATE/<name>. A non-root user cannot switch users, so user changes are
    disabled automatically for them.
    """
    cli = cli or {}
    env = os.environ if environ is None else environ
    given: dict[str, Any] = {}
    for f in FIELDS:
        value = cli.get(f.attr)
        if value is not None and not (f.kind == "bool" and value is False):
            given[f.attr] = _parse_value(f, value, f.flag or f.env)
        elif env.get(f.env) not in (None, ""):
            given[f.attr] = _parse_value(f, env[f.env], f.env)

    state = given.get("state_dir") or default_state_dir(env)
    system_state = state == "/var"
    derived = {
        "runtime_dir": ("/run" if sys.platform.startswith("linux") else "/var/run")
        if system_state else os.path.join(state, "run"),
        "tmp_dir": "/tmp" if system_state else os.path.join(state, "tmp"),
        "log_dir": os.path.join(state, "log"),
        "cache_dir": os.path.join(state, "cache"),
        "spool_dir": os.path.join(state, "spool"),
        "lock_dir": os.path.join(state, "lock"),
        "lib_dir": os.path.join(state, "lib"),
    }
    values: dict[str, Any] = {"state_dir": state}
    for attr, default in derived.items():
        values[attr] = given.get(attr, default)
    values["force_disable_user_change"] = (
        bool(given.get("force_disable_user_change")) or not _is_root())
    values["process_manager"] = given.get("process_manager", DEFAULT_PROCESS_MANAGER)
    values["process_manager_given"] = "process_manager" in given
    values["ids_file"] = given.get("ids_file")
    values["profile"] = given.get("profile", DEFAULT_PROFILE)
    values["extra_params"] = given.get("extra_params", {})
    values["model_timeout"] = given.get("model_timeout", DEFAULT_MODEL_TIMEOUT)
    values["log_max_bytes"] = given.get("log_max_bytes")
    values["log_backups"] = given.get("log_backups")
    for fields in backend_fields().values():
        for f in fields:  # a bad value fails here, before anything is built or stopped
            f.read(env)
    if "/" in values["profile"] or not values["profile"] or values["profile"].startswith("."):
        raise UsageError(f"--profile: {values['profile']!r} is not a valid profile name")
    uid, gid = os.geteuid(), os.getegid()
    try:
        values["calling_user"] = pwd.getpwuid(uid).pw_name
    except KeyError:
        values["calling_user"] = str(uid)
    try:
        values["calling_group"] = grp.getgrgid(gid).gr_name
    except KeyError:
        values["calling_group"] = str(gid)
    return Settings(**values)
