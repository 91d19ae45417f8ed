"""systemd backend: one ``.service`` unit per process, deployed into a real systemd.

Native model
    ``{"Unit": {...}, "Service": {...}, "Install": {...}}``. Every key of a
    section becomes a ``Key=value`` line, so any systemd directive is
    reachable through ``overrides={"systemd": {...}}`` (deep-merged; ``None``
    deletes a key) or a function. Values are *systemd text*, written as
    they are: ``ExecStart`` is a quoted command line (build one with
    :func:`exec_line`), ``%`` in a value is a specifier (write ``%%``).
    A list renders as repeated keys (``ExecStartPre``, ``After``...); ``True``
    and ``False`` render as ``yes``/``no``; ``None`` is left out. Only
    ``Environment`` may be a dict (name -> plain value): each variable
    becomes one ``Environment=`` line quoted by :func:`environment_assignment`,
    and a dict override adds or (with ``None``) removes single variables.

Generated unit
    ``Type=simple`` with the foreground command when the process has one
    (the original's preference), otherwise ``Type=forking`` with
    ``PIDFile=`` and the daemon command. ``initialize`` becomes a POSIX sh
    script ``bin/<name>-prestart`` in the same store entry, run by
    ``ExecStartPre=/bin/sh %Y/../../../bin/<name>-prestart``; ``%Y`` is the
    directory of the unit file, and for a *linked* unit (a symlink into the
    unit search path, which is how the activator installs units) systemd
    resolves it to the real file in the store. The executable is ``/bin/sh``
    because systemd refuses executable paths containing ``..``. The line
    gets the ``+`` prefix when the process runs as another user, so
    initialize runs as root as in the original. ``Wants=`` and ``After=``
    name the dependencies' units; no ``.wants/`` directory of symlinks is
    generated: a ``Wants=`` in the unit itself is what systemd reads, while
    ``.wants/`` links exist to add dependencies to units one does not own
    (``systemctl enable``) and would be a second copy of the same fact for
    the activator to install and remove.

Readiness (native)
    A ``Notify`` declaration of a foreground process becomes ``Type=notify``
    with ``NotifyAccess=main`` and ``TimeoutStartSec=`` its timeout: systemd
    sets ``NOTIFY_SOCKET`` itself, so procmgmt's own socket variable is left
    out, and the engine does not probe (``systemctl start`` returns once
    READY=1 arrived). Any other declaration becomes a generated POSIX sh wait
    ``bin/<name>-ready`` run by ``ExecStartPost=`` (a LogLine check also
    records the log size in ``ExecStartPre=`` ``bin/<name>-ready --mark``):
    the unit stays "activating" until the check passes, so ``After=``
    dependents start only when it is ready, at boot as during a switch, and
    a check that times out fails the start (systemd stops the process).
    ``TimeoutStartSec=`` is raised when the check may take longer than
    systemd's 90 s default. A ``Notify`` declaration of a daemon-only process
    cannot be expressed (``Type=notify`` needs the main process in the
    foreground): only the engine waits for it, during a switch.

Settings read from the environment (kept out of the shared settings table
because only this backend uses them):

``PROCMGMT_SYSTEMD_PREFIX``
    unit name prefix, default ``procmgmt-`` (unit ``procmgmt-<name>.service``).
``PROCMGMT_SYSTEMD_USER``
    ``1`` targets the user's own manager (``systemctl --user``): units are
    wanted by ``default.target`` and carry no ``User=``/``Group=``.
    Default ``0``, also for non-root callers: the choice changes the
    generated files, so it is never guessed from who runs procmgmt.
``PROCMGMT_SYSTEMD_TARGET_DIR``
    where the activator links the units: default ``/etc/systemd/system``,
    or ``$XDG_CONFIG_HOME/systemd/user`` (``~/.config/systemd/user``) in
    user mode.

The activator links (never copies) the store's unit files into the target
dir: a copy would lose the store location that ``%Y`` resolves to, and a
link makes the deployed unit exactly the reviewed, immutable store file.
"""

from __future__ import annotations

import difflib
import functools
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from procmgmt import fsutil
from procmgmt import readiness as rd
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
    Tool,
)
from procmgmt.backends.shared import ready as _ready_sh
from procmgmt.errors import DeployError, UsageError
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import Settings
from procmgmt.testhooks import fail_point

PREFIX_ENV = "PROCMGMT_SYSTEMD_PREFIX"
USER_ENV = "PROCMGMT_SYSTEMD_USER"
TARGET_DIR_ENV = "PROCMGMT_SYSTEMD_TARGET_DIR"
DEFAULT_PREFIX = "procmgmt-"
SYSTEM_TARGET_DIR = "/etc/systemd/system"
UNIT_DIR = "etc/systemd/system"
#: Section order in the unit file; other sections follow in model order.
SECTION_ORDER = ("Unit", "Service", "Install")
#: Seconds a started unit must stay active: Type=simple reports success at fork.
START_GRACE = 0.5
#: systemd's DefaultTimeoutStartSec=: a readiness wait that may take longer raises it.
DEFAULT_START_TIMEOUT = 90
#: Timeout of one systemctl call (systemd's default stop timeout is 90 s).
SYSTEMCTL_TIMEOUT = 120
STATUS_LINES = 20

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+\.service")
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_SECTION = re.compile(r"[A-Za-z][A-Za-z0-9 _.-]*")
#: Words written without quotes. Everything else is double-quoted.
_SAFE_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r",
            "\a": "\\a", "\b": "\\b", "\f": "\\f", "\v": "\\v"}


# --- quoting ---------------------------------------------------------------------

def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise UsageError(f"{name}: expected 1 or 0, got {environ[name]!r}")


def user_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``PROCMGMT_SYSTEMD_USER`` asks for the user manager."""
    return _env_flag(os.environ if environ is None else environ, USER_ENV)


def unit_prefix(environ: Mapping[str, str] | None = None) -> str:
    """The unit name prefix (``PROCMGMT_SYSTEMD_PREFIX``, default ``procmgmt-``)."""
    env = os.environ if environ is None else environ
    prefix = env.get(PREFIX_ENV, DEFAULT_PREFIX)
    if not re.fullmatch(r"[A-Za-z0-9:_.\\-]*", prefix):
        raise UsageError(f"{PREFIX_ENV}: {prefix!r} contains characters a unit name cannot")
    return prefix


def unit_name(name: str, prefix: str | None = None) -> str:
    """``<prefix><name>.service``."""
    return f"{unit_prefix() if prefix is None else prefix}{name}.service"


def _c_escape(text: str) -> str:
    """C escapes systemd undoes (EXTRACT_CUNESCAPE) inside a double-quoted word."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)  # non-ASCII stays literal UTF-8
    return "".join(out)


def _check_text(text: str, what: str) -> None:
    if "\0" in text:
        raise ValueError(f"{what}: a NUL character cannot be passed to a process")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what}: {text!r} is not valid Unicode text") from None


def exec_word(word: str) -> str:
    """One argument of an ``Exec*=`` line that systemd hands over exactly as ``word``.

    systemd resolves specifiers on the raw line (``%%`` -> ``%``), then
    splits it into words (quotes, C escapes) and finally expands ``$VAR``
    in each word (``$$`` -> ``$``): the escapes are applied in the reverse
    order. A lone ``;`` would separate commands, so it is quoted too.
    """
    _check_text(word, "command argument")
    text = word.replace("$", "$$")
    if not (_SAFE_WORD.fullmatch(text) and text != ";"):
        text = '"' + _c_escape(text) + '"'
    return text.replace("%", "%%")


def exec_line(argv: Sequence[str], prefix: str = "") -> str:
    """An ``Exec*=`` value running ``argv``; ``prefix`` is systemd's ``-@:+!`` flags."""
    if not argv:
        raise ValueError("a command needs at least the executable")
    return prefix + " ".join(exec_word(a) for a in argv)


def environment_assignment(name: str, value: str) -> str:
    """One ``Environment=`` word: ``NAME=value``, double-quoted when needed.

    No ``$`` expansion happens in Environment=, but specifiers do (``%%``),
    and quotes and C escapes are undone.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Environment: {name!r} is not a valid variable name")
    _check_text(value, f"Environment {name}")
    text = f"{name}={value}"
    if not _SAFE_WORD.fullmatch(text):
        text = '"' + _c_escape(text) + '"'
    return text.replace("%", "%%")


def specifier_escape(text: str) -> str:
    """Plain text for a setting that resolves specifiers (Description, paths)."""
    return text.replace("%", "%%")


def environment_problem(value: str) -> str | None:
    """Why ``value`` cannot be an Environment= value, or None.

    systemd 252 accepts C-escaped control characters in values, but
    versions before 248 reject every control character except TAB and drop
    the whole assignment with only a log warning. A unit must not lose a
    variable silently on an older systemd, so such values are refused here.
    """
    for ch in value:
        if ch == "\0":
            return "contains a NUL character, which no environment variable can hold"
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            name = "a newline" if ch == "\n" else f"the control character {ch!r}"
            return (f"contains {name}; systemd's Environment= cannot hold it portably "
                    "(systemd before 248 drops the variable)")
    return None


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot be a WorkingDirectory=/PIDFile= value, or None.

    Those settings are plain one-line values (no quoting): a line break or
    other control character would end or corrupt the line, surrounding
    whitespace is stripped, a trailing backslash continues the line, and
    systemd refuses paths that are not normalized ("." or ".." components).
    """
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        return ("contains a line break or another control character, which a unit "
                "file line cannot hold")
    if path != path.strip():
        return "has leading or trailing whitespace, which systemd strips"
    if path.endswith("\\"):
        return "ends with a backslash, which would continue the unit file line"
    if any(part in (".", "..") for part in path.split("/")):
        return "contains a '.' or '..' component; systemd accepts only normalized paths"
    return None


# --- known directives --------------------------------------------------------------

#: ``Section Key`` lines of every directive systemd knows in a ``.service`` unit,
#: generated from the installed systemd by scripts/systemd_directives.py.
DIRECTIVES_FILE = "systemd_directives.txt"
#: systemd's convention for extensions: keys and sections starting with ``X-``
#: are kept and ignored by systemd, never reported as unknown.
EXTENSION_PREFIX = "X-"


@functools.cache
def known_directives() -> dict[str, frozenset[str]]:
    """Section -> the keys systemd knows there."""
    text = (resources.files("procmgmt.backends") / DIRECTIVES_FILE).read_text(encoding="utf-8")
    table: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            section, key = line.split()
            table.setdefault(section, set()).add(key)
    return {section: frozenset(keys) for section, keys in table.items()}


def _suggestion(word: str, candidates: Iterable[str]) -> str:
    options = sorted(candidates)
    exact = [c for c in options if c.lower() == word.lower()]
    close = exact or difflib.get_close_matches(word, options, n=3, cutoff=0.75)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def directive_problems(native: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field path, message)`` for every section and key of ``native`` systemd does
    not know (systemd itself would log "Unknown key ..., ignoring" and run the unit
    without it). ``X-`` sections and keys are systemd's extension convention."""
    known = known_directives()
    problems: list[tuple[str, str]] = []
    for raw_section, body in native.items():
        section = str(raw_section)
        if section.startswith(EXTENSION_PREFIX) or body is None:
            continue
        if section not in known:
            problems.append((section, f"unknown systemd section [{section}]"
                             + (_suggestion(section, known) or
                                f"; a .service unit has [{'], ['.join(SECTION_ORDER)}]")
                             + f" (extension sections start with {EXTENSION_PREFIX})"))
            continue
        if not isinstance(body, Mapping):
            continue  # render_unit says what is wrong with it
        for raw_key, value in body.items():
            key = str(raw_key)
            if key.startswith(EXTENSION_PREFIX) or key in known[section] or value is None:
                continue
            elsewhere = [s for s in SECTION_ORDER if s != section and key in known.get(s, ())]
            hint = (f"; {key}= belongs in [{elsewhere[0]}]" if elsewhere
                    else _suggestion(key, known[section]))
            problems.append((f"{section}.{key}", f"unknown systemd directive {key}= in "
                             f"[{section}]{hint} (systemd would ignore it; extension keys "
                             f"start with {EXTENSION_PREFIX})"))
    return problems


# --- rendering -------------------------------------------------------------------

def _render_value(section: str, key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        if key != "Environment":
            raise ValueError(f"[{section}] {key}: only Environment may be a dict")
        return [environment_assignment(str(k), str(v))
                for k, v in sorted(value.items()) if v is not None]
    if isinstance(value, list | tuple):
        return [line for item in value for line in _render_value(section, key, item)]
    if isinstance(value, bool):
        return ["yes" if value else "no"]
    text = str(value)
    if "\n" in text or "\r" in text or "\0" in text:
        raise ValueError(f"[{section}] {key}: a value must be one line, got {text!r}")
    if text.rstrip().endswith("\\"):
        raise ValueError(f"[{section}] {key}: a trailing backslash would continue the line")
    return [text.strip()]


def render_unit(native: Mapping[str, Any]) -> str:
    """The unit file text of a native model."""
    sections = [s for s in SECTION_ORDER if s in native]
    sections += [s for s in native if s not in SECTION_ORDER]
    lines = ["# Generated by procmgmt (systemd backend)."]
    for section in sections:
        body = native[section]
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise ValueError(f"section {section!r} must be a dict of keys, got {body!r}")
        if not _SECTION.fullmatch(section):
            raise ValueError(f"{section!r} is not a unit file section name")
        out = []
        for key, value in body.items():
            if not _KEY.fullmatch(str(key)):
                raise ValueError(f"[{section}] {key!r} is not a unit file key")
            out += [f"{key}={v}" for v in _render_value(section, str(key), value)]
        if out:
            lines += ["", f"[{section}]", *out]
    return "\n".join(lines) + "\n"


def render_prestart(name: str, initialize: str) -> str:
    """The POSIX sh script ExecStartPre= runs (``set -e``: a failing step fails the start)."""
    return (
        "#!/bin/sh\n"
        f"# initialize of {' '.join(name.split())}, run by systemd before the process starts\n"
        "# (as root when the process runs as another user).\n"
        "set -e\n"
        f"{initialize.strip(chr(10))}\n"
    )


def _resolve_executable(exe: str, spec: ProcessSpec) -> str:
    """A bare executable name found in ``path`` becomes absolute: systemd looks
    bare names up in its own fixed directories, not in Environment=PATH."""
    if "/" in exe:
        return exe
    for d in (spec.path_value() or "").split(":"):
        candidate = os.path.join(d, exe)
        if d and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return exe


class SystemdBackend(Backend):
    """One ``<prefix><name>.service`` unit per process."""

    name = "systemd"
    capabilities = Capabilities(
        prefers="foreground",
        dependencies="native",
        ordering="Wants= + After=",
        user_switching=True,
        user_mode=True,
        tested="run",
        readiness="native",
        notes="readiness: Notify is Type=notify (foreground processes), other checks a "
              "generated sh wait in ExecStartPost=, so After= dependents start when ready; "
              "real systemd inside systemd-nspawn; user mode with systemctl --user "
              "(PROCMGMT_SYSTEMD_USER=1)",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """Unit, Service and Install sections, values already in systemd syntax."""
        settings = ctx.settings
        prefix = unit_prefix()
        user_manager = user_mode()
        user = None if user_manager else spec.effective_user(settings)
        if user_manager and spec.effective_user(settings):
            ctx.warn(spec, self.name, f"user {spec.user!r} ignored: a user manager "
                                      "cannot switch users")
        deps = [unit_name(d, prefix) for d in spec.dependencies]
        # One line; a trailing backslash would continue it, so it is dropped.
        description = " ".join(spec.description.split()).rstrip(" \\")
        unit: dict[str, Any] = {"Description": specifier_escape(description)}
        if deps:
            unit["Wants"] = deps
            unit["After"] = list(deps)
        service: dict[str, Any] = {}
        if spec.foreground:
            service["Type"] = "simple"
            exe, args = spec.foreground, spec.foreground_args
        elif spec.daemon:
            service["Type"] = "forking"
            service["PIDFile"] = specifier_escape(spec.derived_pid_file(settings))
            exe, args = spec.daemon, spec.daemon_args
        else:
            raise ValueError(f"{spec.name}: neither a daemon nor a foreground process to run")
        if spec.initialize.strip():
            service["ExecStartPre"] = [self._store_script(self.prestart_path(spec), user)]
        check = spec.readiness
        notify = isinstance(check, rd.Notify) and bool(spec.foreground)
        if notify:
            service["Type"] = "notify"
            service["NotifyAccess"] = "main"
            service["TimeoutStartSec"] = max(1, math.ceil(float(check.timeout)))
        elif _ready_sh.checkable(check):
            if isinstance(check, rd.LogLine):
                service.setdefault("ExecStartPre", []).append(
                    self._store_script(self.ready_path(spec), user, "--mark"))
            service["ExecStartPost"] = [self._store_script(self.ready_path(spec), user)]
            wanted = math.ceil(float(check.timeout)) + 30
            if wanted > DEFAULT_START_TIMEOUT:
                service["TimeoutStartSec"] = wanted
        service["ExecStart"] = exec_line([_resolve_executable(exe, spec), *args])
        environment = dict(spec.environment)
        if notify and environment.get("NOTIFY_SOCKET") == rd.notify_socket_path(
                settings.runtime_dir, spec.name):
            # systemd gives the process its own NOTIFY_SOCKET.
            del environment["NOTIFY_SOCKET"]
        path = spec.path_value()
        if path:
            environment["PATH"] = f"{path}:{SYSTEM_PATH}"
        if environment:
            service["Environment"] = environment
        if spec.directory:
            service["WorkingDirectory"] = specifier_escape(spec.directory)
        if spec.umask:
            service["UMask"] = spec.umask
        if spec.nice is not None:
            service["Nice"] = spec.nice
        if user:
            service["User"] = user
            account = spec.credentials.users.get(user)
            if account is not None and account.group:
                service["Group"] = account.group
        service["KillMode"] = "control-group"
        if spec.stop_signal != "TERM":
            service["KillSignal"] = f"SIG{spec.stop_signal}"
        return {
            "Unit": unit,
            "Service": service,
            "Install": {"WantedBy": "default.target" if user_manager else "multi-user.target"},
        }

    @staticmethod
    def prestart_path(spec: ProcessSpec) -> str:
        """Store-relative path of the initialize script."""
        return f"bin/{spec.name}-prestart"

    @staticmethod
    def ready_path(spec: ProcessSpec) -> str:
        """Store-relative path of the readiness wait script."""
        return f"bin/{spec.name}-ready"

    @staticmethod
    def _store_script(rel: str, user: str | None, *args: str) -> str:
        """An Exec*= line running a script of this store entry with /bin/sh
        (``+``: as root, when the process runs as another user, like initialize).
        ``%Y`` is the unit file's directory; exec_word would make it a literal
        "%Y", so the path is quoted by hand."""
        return (("+" if user else "") + "/bin/sh " + '"' + _c_escape(f"%Y/../../../{rel}") + '"'
                + "".join(" " + exec_word(a) for a in args))

    @staticmethod
    def _waits(spec: ProcessSpec) -> bool:
        """True when the unit gets the generated readiness wait (not Type=notify)."""
        return _ready_sh.checkable(spec.readiness) and not (
            isinstance(spec.readiness, rd.Notify) and bool(spec.foreground))

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The unit file, plus the prestart script when there is an initialize."""
        name = unit_name(spec.name)
        if not _UNIT_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid unit name")
        unknown = directive_problems(native)
        if unknown:
            raise ValueError("; ".join(message for _, message in unknown))
        files = [File(f"{UNIT_DIR}/{name}", render_unit(native))]
        if spec.initialize.strip():
            files.append(File(self.prestart_path(spec),
                              render_prestart(spec.name, spec.initialize), mode=0o755))
        if self._waits(spec):
            files.append(File(self.ready_path(spec), _ready_sh.ready_script(
                spec.name, spec.readiness, pid_file=spec.derived_pid_file(ctx.settings),
                offset_file=_ready_sh.log_offset_file(spec, ctx.settings)), mode=0o755))
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Unit name, unit file and prestart script (store-relative), user mode."""
        name = unit_name(spec.name)
        return {
            "unit": name,
            "unit_file": f"{UNIT_DIR}/{name}",
            "prestart": self.prestart_path(spec) if spec.initialize.strip() else None,
            "user_mode": user_mode(),
            # systemctl start returns once systemd saw READY=1 (Type=notify): the
            # engine's own notification socket would never hear from the process.
            **({"readiness_native": True}
               if (native.get("Service") or {}).get("Type") == "notify"
               and isinstance(spec.readiness, rd.Notify) else {}),
        }

    def validate(self, specs: Sequence[ProcessSpec],
                 ctx: BuildContext) -> list[tuple[str, str, str]]:
        """Values a unit file cannot carry: control characters in Environment=,
        relative paths, a store path the prestart line cannot quote."""
        problems: list[tuple[str, str, str]] = []
        prefix = unit_prefix()
        for spec in specs:
            override = spec.override_for(self.name)
            if isinstance(override, Mapping):
                # A function override is checked when it has run (render).
                problems += [(spec.name, f"overrides.systemd.{where}", message)
                             for where, message in directive_problems(override)]
            for key, value in sorted(spec.environment.items()):
                why = environment_problem(value)
                if why:
                    problems.append((spec.name, f"environment.{key}", f"value {why}"))
            if not _UNIT_NAME.fullmatch(unit_name(spec.name, prefix)):
                problems.append((spec.name, "name",
                                 f"{unit_name(spec.name, prefix)!r} is not a valid unit name"))
            for fieldname, path in (("directory", spec.directory),
                                    ("pid_file", spec.pid_file)):
                if path and not path.startswith("/"):
                    problems.append((spec.name, fieldname,
                                     f"systemd needs an absolute path, got {path!r}"))
                elif path:
                    why = path_problem(path)
                    if why:
                        problems.append((spec.name, fieldname, f"{path!r} {why}"))
            exe = spec.foreground or spec.daemon
            if exe and "/" in exe and not exe.startswith("/"):
                problems.append((spec.name, "process",
                                 f"systemd needs an absolute path or a bare name, got {exe!r}"))
            problems += _ready_sh.spec_problems(spec) if self._waits(spec) else []
            # %Y expands to the store path before the line is split into words.
            if (spec.initialize.strip() or self._waits(spec)) and re.search(
                    r'["\\$%\x00-\x1f]', ctx.settings.store_dir):
                problems.append((spec.name,
                                 "initialize" if spec.initialize.strip() else "readiness",
                                 f"the store dir {ctx.settings.store_dir!r} contains a quote, "
                                 "backslash, $, % or control character, which the "
                                 "ExecStartPre=/ExecStartPost= line cannot carry"))
        return problems

    def activator(self, settings: Settings) -> Activator:
        """Links units into the target dir and drives ``systemctl``."""
        return SystemdActivator(settings)


# --- activation ------------------------------------------------------------------

def target_dir(environ: Mapping[str, str] | None = None) -> str:
    """Where units are linked: ``PROCMGMT_SYSTEMD_TARGET_DIR`` or the mode's default."""
    env = os.environ if environ is None else environ
    explicit = env.get(TARGET_DIR_ENV)
    if explicit:
        return os.path.abspath(explicit)
    if user_mode(env):
        config = env.get("XDG_CONFIG_HOME") or os.path.join(
            env.get("HOME") or os.path.expanduser("~"), ".config")
        return os.path.join(config, "systemd", "user")
    return SYSTEM_TARGET_DIR


def _unit_of(proc: DeployedProcess) -> str:
    return str(proc.extra.get("unit") or unit_name(proc.name))


def _unit_file_of(proc: DeployedProcess) -> str:
    rel = proc.extra.get("unit_file") or f"{UNIT_DIR}/{_unit_of(proc)}"
    return os.path.join(proc.path, str(rel))


class SystemdActivator(Activator):
    """Installs units as symlinks to the store and starts them with systemctl."""

    #: start/stop/status are separate systemctl calls on separate units, and
    #: systemd queues jobs itself: safe to run in parallel (the link
    #: bookkeeping in stop is guarded by a lock).
    parallel_safe = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self.user = user_mode()
        self.target_dir = target_dir()
        #: Units of the generation being activated (set by prepare).
        self._new_units: dict[str, str] = {}
        #: Links this activator created, candidates for removal in finish.
        self._installed: set[str] = set()
        #: A link went away since the last daemon-reload.
        self._reload_needed = False

    # systemctl plumbing

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.user and not env.get("XDG_RUNTIME_DIR"):
            runtime = f"/run/user/{os.getuid()}"
            if os.path.isdir(runtime):
                env["XDG_RUNTIME_DIR"] = runtime
        return env

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``systemctl [--user] ARGS``; DeployError on failure when ``check``."""
        cmd = ["systemctl", *(["--user"] if self.user else []), "--no-ask-password", *args]
        try:
            result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                    text=True, timeout=SYSTEMCTL_TIMEOUT, env=self._env(),
                                    check=False)
        except subprocess.TimeoutExpired:
            raise DeployError(f"'{' '.join(cmd)}' did not finish within "
                              f"{SYSTEMCTL_TIMEOUT} s") from None
        except OSError as exc:
            raise DeployError(f"cannot run systemctl: {exc}") from None
        if check and result.returncode != 0:
            raise DeployError(f"'{' '.join(cmd)}' failed with exit status {result.returncode}: "
                              f"{(result.stderr or result.stdout).strip()}")
        return result

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """Properties of ``unit`` from ``systemctl show``."""
        result = self.systemctl("show", *(f"--property={p}" for p in props), unit)
        out = {}
        for line in result.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key] = value
        return out

    # links

    def _link_path(self, unit: str) -> str:
        return os.path.join(self.target_dir, unit)

    def _our_link(self, link: str) -> bool:
        """A symlink into procmgmt's store: never touch units someone else installed."""
        if not os.path.islink(link):
            return False
        target = os.readlink(link)
        store = os.path.join(self.settings.store_dir, "")
        return target.startswith(store)

    def _install(self, proc: DeployedProcess) -> None:
        unit = _unit_of(proc)
        link, source = self._link_path(unit), _unit_file_of(proc)
        if os.path.islink(link) and os.readlink(link) == source:
            self._installed.add(unit)
            return
        if os.path.lexists(link) and not self._our_link(link):
            raise DeployError(f"{proc.name}: {link} exists and was not installed by procmgmt; "
                              "remove it or choose another PROCMGMT_SYSTEMD_PREFIX")
        tmp = f"{link}.procmgmt-tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(source, tmp)
        os.replace(tmp, link)  # atomic: the unit is never missing
        self._installed.add(unit)

    def _remove_link(self, unit: str) -> bool:
        link = self._link_path(unit)
        if self._our_link(link):
            os.unlink(link)
            self._reload_needed = True
            return True
        return False

    # the Activator contract

    def _privilege_problem(self) -> str | None:
        if not self.user and os.geteuid() != 0:
            return (f"the systemd system manager needs root; set {USER_ENV}=1 to deploy to "
                    "your own user manager")
        return None

    def required_tools(self, gen: Generation) -> list[Tool]:
        """systemctl."""
        return [Tool("systemctl", "systemctl", "the systemd backend needs a machine that "
                     "runs systemd; deploy with another process manager (-P)")]

    def preflight(self, gen: Generation) -> list[str]:
        """systemctl present, root for the system manager, and a manager that answers
        (in user mode: the user's bus, which a login without a session lacks)."""
        problems = super().preflight(gen)
        privilege = self._privilege_problem()
        if problems or privilege:
            return [*problems, *([privilege] if privilege else [])]
        try:
            result = self.systemctl("show", "--property=Version", check=False)
        except DeployError as exc:
            return [str(exc)]
        if result.returncode != 0:
            which = "your user manager" if self.user else "the system manager"
            hint = (" (in user mode it needs a login session with a bus: "
                    "'loginctl enable-linger' and XDG_RUNTIME_DIR)" if self.user else "")
            problems.append(f"cannot reach {which} with systemctl{hint}: "
                            f"{(result.stderr or result.stdout).strip()}")
        return problems

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Link every unit of ``new`` (old units stay until stopped), daemon-reload."""
        privilege = self._privilege_problem()
        if privilege:
            raise UsageError(privilege)
        fsutil.ensure_dir(self.target_dir)
        self._new_units = {_unit_of(p): _unit_file_of(p) for p in new.processes}
        # Only after a failed switch does this activator hold links already:
        # units it started for the failed generation and has stopped again.
        for unit in sorted(self._installed - set(self._new_units)):
            state = self.show(unit, "ActiveState").get("ActiveState")
            if state in ("inactive", "failed") and self._remove_link(unit):
                self._installed.discard(unit)
        for p in new.processes:
            self._install(p)
        fail_point("reload")
        self.systemctl("daemon-reload")

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """``systemctl start``, then the unit must stay active for a short grace time."""
        unit = _unit_of(proc)
        result = self.systemctl("start", unit, check=False)
        state = {}
        if result.returncode == 0:
            deadline = time.monotonic() + START_GRACE
            while True:
                state = self.show(unit, "ActiveState", "SubState", "Result")
                if state.get("ActiveState") != "active" or time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
            if state.get("ActiveState") == "active":
                return
        why = (result.stderr.strip() if result.returncode != 0
               else f"it is {state.get('ActiveState')}/{state.get('SubState')} "
                    f"(result {state.get('Result')}) right after starting")
        raise DeployError(f"{proc.name}: systemd could not start {unit}: {why}\n"
                          + self._diagnostics(unit))

    def _diagnostics(self, unit: str) -> str:
        status = self.systemctl("status", "--no-pager", "--full", f"--lines={STATUS_LINES}",
                                unit, check=False)
        return "\n".join((status.stdout or status.stderr).rstrip().splitlines()[-40:])

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``systemctl stop``; the link goes unless the new generation has this very file."""
        unit = _unit_of(proc)
        result = self.systemctl("stop", unit, check=False)
        if result.returncode != 0:
            load = self.show(unit, "LoadState").get("LoadState")
            if load not in ("not-found", "masked"):
                raise DeployError(f"{proc.name}: systemctl stop {unit} failed: "
                                  f"{result.stderr.strip()}\n" + self._diagnostics(unit))
        # A changed unit keeps its name: prepare already pointed the link at the
        # new file, which must stay.
        with self._lock:
            if unit not in self._new_units and self._remove_link(unit):
                self._installed.discard(unit)
                self._reload_needed = True

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """ActiveState and MainPID from ``systemctl show``."""
        unit = _unit_of(proc)
        props = self.show(unit, "ActiveState", "SubState", "MainPID")
        active = props.get("ActiveState", "unknown")
        pid = int(props.get("MainPID") or 0) or None
        return ProcessStatus(proc.name, active in ("active", "reloading"), pid,
                             detail=f"{unit} {active}/{props.get('SubState', '?')}")

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """systemd keeps a unit's stdout and stderr in the journal: ``journalctl -u``
        (``--user-unit`` for the user's systemd)."""
        return LogSource(journal=("--user-unit" if self.user else "-u", _unit_of(proc)))

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """``reload`` goes to systemctl; the rest as for every activator."""
        if activity == "reload":
            return self.systemctl("reload", _unit_of(proc), check=False).returncode
        return super().activity(gen, proc, activity)

    def finish(self, new: Generation, old: Generation | None) -> None:
        """Remove leftover links of units not in ``new``, then daemon-reload."""
        keep = {_unit_of(p) for p in new.processes}
        candidates = set(self._installed)
        if old is not None:
            candidates |= {_unit_of(p) for p in old.processes}
        removed = [u for u in sorted(candidates - keep) if self._remove_link(u)]
        self._installed &= keep
        if removed or self._reload_needed:
            self.systemctl("daemon-reload")
            self._reload_needed = False


def units_in(names: Iterable[str], prefix: str | None = None) -> list[str]:
    """Unit names of process names (helper for callers and tests)."""
    return [unit_name(n, prefix) for n in names]
