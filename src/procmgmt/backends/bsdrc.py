r"""BSD rc backend: FreeBSD rc.d scripts on top of rc.subr(8).

Each process becomes ``etc/rc.d/<name>`` in the classic FreeBSD style:
PROVIDE/REQUIRE/KEYWORD headers for rcorder(8), ``. /etc/rc.subr``,
``name``/``rcvar``, ``load_rc_config``, ``: "${<name>_knob:=default}"``
defaults that rc.conf(5) can override, ``command``/``pidfile``, a
``start_precmd`` and ``run_rc_command "$1"``. The environment goes into a
separate file in the same store entry, loaded by rc.subr through
``<name>_env_file`` (with ``set -a``, so it is exported).

How the pieces map (nix-processmgmt's ``createBSDRCScript``, with its
defects fixed):

- A process that can daemonize runs as ``command`` with its own pid file.
  A foreground-only one runs under FreeBSD ``daemon(8)``:
  ``daemon -f -p <pid file> -o <log file> <exe> <args>`` with the *derived*
  pid file (the original passed a possibly null ``pidFile`` to daemon(8)
  while ``pidfile=`` used the derived one), and ``procname=<exe>`` so that
  rc.subr's pid check matches the child daemon(8) wrote into the pid file.
- ``initialize`` runs in ``start_precmd``, i.e. as root, before rc.subr
  switches to ``<name>_user``.
- rc.subr keeps per-service settings in ``${name}_xxx`` variables, so
  ``name`` must be a shell identifier. Names with ``-``, ``.`` or ``@`` get a
  sanitized variable prefix (``php-fpm`` -> ``php_fpm``, as FreeBSD's own
  ports do); the file name and PROVIDE keep the real name.

**How ``command_args`` is quoted.** rc.subr does not exec an argument
vector: it builds a string and ``eval``\ s it. Without a user or nice level
that string is ``cd DIR && limits -C daemon $command $rc_flags
$command_args`` (one level of shell parsing). With ``<name>_nice`` it
becomes ``nice -n N sh -c "..."`` (two levels: double quotes, then
``sh -c``), and with ``<name>_user`` ``su -m USER -c 'sh -c "..."'`` (three
levels: single quotes, double quotes in su's shell, ``sh -c``). rc.subr
also drops ``_user`` when the caller already is that user, and rc.conf(5)
may set or change ``_user``/``_nice``/``_chroot`` after this file was
generated. A string quoted once at generation time is therefore right
for one of these cases only. The script keeps the exact argument vector
instead and ``start_precmd`` (which rc.subr runs after loading rc.conf and
before building that string) quotes it for the case rc.subr is about to
use: every argument single-quoted for ``sh -c``/eval, then ``\ $ ` "``
escaped for the double-quoted layer, then ``'`` written as ``'\''`` for
su's single-quoted layer. ``tests/backends/test_bsdrc.py`` replays rc.subr's
string building with these values for arbitrary arguments. Limit: su(1)
runs the command string with root's login shell; the double-quoted layer
assumes it is a POSIX sh (FreeBSD's default for root since 14.0). With
csh as root's shell, arguments containing ``! $ ` " \\`` or newlines may
not survive the user switch; translation warns about such arguments.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from procmgmt import fsutil
from procmgmt import readiness as rd
from procmgmt.backends import _activation
from procmgmt.backends._activation import (
    CommandResult,
    Runner,
    pid_file_status,
    subprocess_runner,
)
from procmgmt.backends._shell import PID_OWNED_SH, quote
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
from procmgmt.backends.rcorder import RcScript, dependency_graph, parse_file, rcorder, violations
from procmgmt.backends.shared import ready as _ready_sh
from procmgmt.errors import DeployError
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

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
#: Activator defaults (environment variables override them).
DEFAULT_TARGET_DIR = "/usr/local/etc/rc.d"
DEFAULT_RC_CONF = "/etc/rc.conf"
#: Seconds the activator waits for a started process's pid file to name a live process.
DEFAULT_START_TIMEOUT = 10.0

#: Words that rc.subr interpolates unquoted into eval'ed strings or ``[ ]``
#: tests (pidfile, command, procname, chdir, user, env file): they must not
#: need quoting.
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_./:@%+=,-]+\Z")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_SIGNAL_NAME = re.compile(r"^[A-Z][A-Z0-9]*\Z")
#: Condition names in headers are whitespace-separated words.
_CONDITION = re.compile(r"^[^\s#]+$")
#: Characters a csh (root's shell on FreeBSD before 14) would not treat like sh in su's layer.
_CSH_UNSAFE = set("!$`\"\\'\n")
#: Variables of the rc script's own shell that an environment file (loaded
#: there with ``set -a``) must not overwrite.
_RESERVED_ENV = {
    "IFS", "PS4", "OPTIND", "name", "rcvar", "rcvars", "desc", "command", "command_args",
    "command_interpreter", "procname", "pidfile", "flags", "extra_commands",
    "sig_stop", "sig_reload", "required_dirs", "required_files", "required_vars",
    "required_modules", "start_precmd", "start_postcmd", "stop_precmd", "stop_postcmd",
    "start_cmd", "stop_cmd", "status_cmd", "autoboot", "local_startup",
}

_HELPERS = r"""# procmgmt_replace FROM TO STRING: STRING with every FROM replaced by TO, in
# procmgmt_out (plain parameter expansion: no sed, no subshell).
procmgmt_replace()
{
	procmgmt_in=$3
	procmgmt_out=
	while :; do
		case $procmgmt_in in
		*"$1"*)
			procmgmt_out=$procmgmt_out${procmgmt_in%%"$1"*}$2
			procmgmt_in=${procmgmt_in#*"$1"}
			;;
		*)
			break
			;;
		esac
	done
	procmgmt_out=$procmgmt_out$procmgmt_in
}

# procmgmt_command_args CHROOT USER NICE ARG...: set command_args so that
# rc.subr's start passes every ARG exactly. rc.subr evals
# "$command $rc_flags $command_args" directly (chroot, or neither user nor
# nice), inside nice -n N sh -c "..." (nice), or inside
# su -m USER -c 'sh -c "..."' (user; dropped when we already are USER).
procmgmt_command_args()
{
	procmgmt_layers='eval'
	if [ -z "$1" ]; then
		if [ -n "$2" ] && [ "$2" != "$(id -un)" ]; then
			procmgmt_layers='su'
		elif [ -n "$3" ]; then
			procmgmt_layers='sh'
		fi
	fi
	shift 3
	command_args=
	for procmgmt_arg in "$@"; do
		procmgmt_replace "'" "'\\''" "$procmgmt_arg"
		procmgmt_word="'$procmgmt_out'"
		if [ "$procmgmt_layers" != eval ]; then
			procmgmt_replace "\\" "\\\\" "$procmgmt_word"
			procmgmt_replace '$' '\$' "$procmgmt_out"
			procmgmt_replace '`' '\`' "$procmgmt_out"
			procmgmt_replace '"' '\"' "$procmgmt_out"
			procmgmt_word=$procmgmt_out
		fi
		if [ "$procmgmt_layers" = su ]; then
			procmgmt_replace "'" "'\\''" "$procmgmt_word"
			procmgmt_word=$procmgmt_out
		fi
		command_args="$command_args${command_args:+ }$procmgmt_word"
	done
}"""


def var_prefix(name: str) -> str:
    """rc.subr's ``name`` for a process name: a shell identifier (``a-b.c`` -> ``a_b_c``)."""
    prefix = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return prefix if _IDENTIFIER.match(prefix) else f"_{prefix}"


class BSDRCBackend(Backend):
    """FreeBSD rc.d scripts (rc.subr), ordered by rcorder over PROVIDE/REQUIRE."""

    name = "bsdrc"
    capabilities = Capabilities(
        prefers="daemon",
        dependencies="native",
        ordering="rcorder over PROVIDE/REQUIRE",
        user_switching=True,
        user_mode=True,
        tested="generated",
        readiness="emulated",
        notes="rc.subr scripts; foreground-only processes run under daemon(8); readiness: "
              "start_postcmd waits for the declared check (generated sh probes; Notify only "
              "by the engine); checked on "
              "Linux with sh/dash/shellcheck/checkbashisms, our rcorder and a stand-in "
              "rc.subr, not with FreeBSD itself",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The native model of one rc script.

        Keys: name (rc.subr ``name``: the variable prefix), file (script file
        name), description, provides, dependencies (REQUIRE'd by name),
        requires (extra REQUIRE conditions), before, keywords, rc_subr,
        rcvar, enable_default, mode ("daemon" or "foreground"), program and
        args (the process), daemon_program and daemon_flags (daemon(8) for
        foreground mode), pid_file, procname (the program the pid file's process
        runs, when not ``program``), log_file, stop_signal, reload_signal,
        user, chdir, nice, umask, environment, path (prepended to PATH),
        initialize, extra_commands, rcvar_defaults (more ``<name>_<var>``
        defaults) and readiness (the declaration as JSON, or None: start waits
        for it in ``start_postcmd``).
        """
        settings = ctx.settings
        if spec.daemon:
            mode, program, args = "daemon", spec.daemon, list(spec.daemon_args)
        elif spec.foreground:
            mode, program, args = "foreground", spec.foreground, list(spec.foreground_args)
        else:
            raise ValueError(f"{spec.name}: neither a daemon nor a foreground process to run")
        prefix = var_prefix(spec.name)
        user = spec.effective_user(settings)
        if user and any(c in _CSH_UNSAFE for a in args for c in a):
            ctx.warn(spec, self.name, "an argument contains one of ! $ ` \" \\ ' or a newline: "
                     "it passes through su(1) exactly only when root's shell is a POSIX sh")
        return {
            "name": prefix,
            "file": spec.name,
            "description": spec.description,
            "provides": [spec.name],
            "dependencies": list(spec.dependencies),
            "requires": list(DEFAULT_REQUIRES),
            "before": [],
            "keywords": list(DEFAULT_KEYWORDS),
            "rc_subr": DEFAULT_RC_SUBR,
            "rcvar": f"{prefix}_enable",
            "enable_default": "NO",
            "mode": mode,
            "program": program,
            "args": args,
            "daemon_program": DEFAULT_DAEMON_PROGRAM,
            "daemon_flags": ["-f"],
            "pid_file": spec.derived_pid_file(settings),
            # None: the process of the pid file is the program (daemon mode, or
            # the child daemon(8) writes in foreground mode).
            "procname": spec.pid_file_program,
            "log_file": spec.log_file(settings, opened_as_user=True),
            "stop_signal": spec.stop_signal,
            "reload_signal": DEFAULT_RELOAD_SIGNAL,
            "user": user,
            "chdir": spec.directory,
            "nice": spec.nice,
            "umask": spec.umask,
            "environment": dict(spec.environment),
            "path": spec.path_value(),
            "initialize": spec.initialize,
            "extra_commands": ["reload"],
            "rcvar_defaults": {},
            "readiness": (spec.readiness.to_json()
                          if isinstance(spec.readiness, rd.Readiness) else None),
        }

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The rc script (0755) and, when there is an environment, its env file."""
        script = RcScriptModel.from_native(native)
        files = [File(script.script_path, render_script(script), mode=0o755)]
        if script.environment:
            files.append(File(script.env_path, render_env_file(script)))
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Script path, rcvar and headers, for the activator."""
        script = RcScriptModel.from_native(native)
        return {
            "script": script.script_path,
            "file": script.file,
            "rcvar": script.rcvar,
            "var_prefix": script.name,
            "provides": list(script.provides),
            "requires": list(script.require_line),
            "before": list(script.before),
            "keywords": list(script.keywords),
            "pid_file": script.pid_file,
            "procname": script.procname,
            "rc_subr": script.rc_subr,
        }

    def validate(self, specs: Sequence[ProcessSpec],
                 ctx: BuildContext) -> list[tuple[str, str, str]]:
        """What rc.subr cannot represent.

        rc.subr expands pidfile, command, procname, ``_chdir`` and
        ``_user`` unquoted (inside ``eval`` or ``[ ]``), so they must be
        plain words; two names may not share a sanitized variable prefix
        (they would share rc.conf knobs); environment variables are loaded
        into the script's own shell and must not overwrite its variables.
        """
        problems: list[tuple[str, str, str]] = []
        by_prefix: dict[str, list[str]] = {}
        for spec in specs:
            by_prefix.setdefault(var_prefix(spec.name), []).append(spec.name)
        for spec in specs:
            prefix = var_prefix(spec.name)
            others = [n for n in by_prefix[prefix] if n != spec.name]
            if others:
                problems.append((spec.name, "name",
                                 f"rc.conf variable prefix {prefix!r} is shared with "
                                 f"{', '.join(others)}: rename one of them"))
            program = spec.daemon or spec.foreground
            checks: list[tuple[str, str | None]] = [
                ("pid_file", spec.derived_pid_file(ctx.settings)),
                ("daemon" if spec.daemon else "foreground_process", program),
                ("pid_file_program", spec.pid_file_program),
                ("directory", spec.directory),
                ("user", spec.effective_user(ctx.settings)),
            ]
            if not spec.daemon:
                checks.append(("log_file", spec.log_file(ctx.settings, opened_as_user=True)))
            for fieldname, value in checks:
                if value is not None and not _SAFE_WORD.match(value):
                    problems.append((spec.name, fieldname,
                                     f"{value!r} contains characters rc.subr would split or "
                                     "expand (it uses this value unquoted): use letters, "
                                     "digits and _ . / : @ % + = , -"))
            for var in spec.environment:
                if var in _RESERVED_ENV or var.startswith(("_", "rc_", f"{prefix}_")):
                    problems.append((spec.name, "environment",
                                     f"{var!r} would overwrite a variable of the rc script "
                                     "itself (rc.subr loads the environment file into the "
                                     "script's shell): rename it"))
            problems += _ready_sh.spec_problems(spec)
        return problems

    def activator(self, settings: Settings) -> Activator:
        """Drives the scripts with ``onestart``/``onestop`` (or boot mode, see the activator)."""
        return BSDRCActivator(settings)


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

    @property
    def script_path(self) -> str:
        """Path of the script inside the store entry."""
        return f"etc/rc.d/{self.file}"

    @property
    def env_path(self) -> str:
        """Path of the environment file inside the store entry (not in rc.d:
        rcorder globs rc.d directories)."""
        return f"etc/env/{self.file}.env"

    @classmethod
    def from_native(cls, native: Mapping[str, Any]) -> RcScriptModel:
        """Check an (overridden) native model; ValueError names the bad key."""
        name = _str(native, "name")
        if not _IDENTIFIER.match(name):
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
        if mode == "foreground":
            log_file = _word(native, "log_file")
            command = _word(native, "daemon_program")
            argv = (*_str_list(native, "daemon_flags"), "-p", pid_file, "-o", log_file,
                    program, *args)
        else:
            command, argv = program, tuple(args)
        rcvar = _str(native, "rcvar")
        if not _IDENTIFIER.match(rcvar):
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
            if not _IDENTIFIER.match(str(var)):
                raise ValueError(f"environment: {var!r} is not a valid variable name")
        defaults = native.get("rcvar_defaults") or {}
        if not isinstance(defaults, Mapping):
            raise ValueError("rcvar_defaults must be a dict of knob names to values")
        for knob, value in defaults.items():
            if not _IDENTIFIER.match(f"{name}_{knob}"):
                raise ValueError(f"rcvar_defaults: {knob!r} does not make a variable name")
            if not _SAFE_WORD.match(str(value)):
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
        )


def _str(native: Mapping[str, Any], key: str) -> str:
    value = native.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _word(native: Mapping[str, Any], key: str) -> str:
    value = _str(native, key)
    if not _SAFE_WORD.match(value):
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


def _signal(native: Mapping[str, Any], key: str, default: str) -> str:
    value = str(native.get(key) or default).removeprefix("-").removeprefix("SIG")
    if not _SIGNAL_NAME.match(value):
        raise ValueError(f"{key}: {value!r} is not a signal name")
    return value


def _snippet(text: str) -> list[str]:
    """Lines of a shell snippet: a one-liner is indented, longer text kept verbatim
    (indenting could change here-documents and multi-line strings)."""
    text = text.strip("\n")
    if not text.strip():
        return ["\t:"]
    if "\n" not in text:
        return ["\t" + text.strip()]
    return text.split("\n")


def render_env_file(script: RcScriptModel) -> str:
    """``NAME=value`` lines sourced by rc.subr (``set -a``: every one is exported)."""
    lines = [f"# Environment of {script.file}, loaded by rc.subr(8) through "
             f"{script.name}_env_file."]
    lines += [f"{k}={quote(v)}" for k, v in sorted(script.environment.items())]
    return "\n".join(lines) + "\n"


def render_script(script: RcScriptModel) -> str:
    """The rc.d script text (see the module docstring for the design)."""
    p = script.name
    knobs = ["user", "chdir", "nice", "umask"] + (["env_file"] if script.environment else [])
    lines = [
        "#!/bin/sh",
        "#",
        f"# PROVIDE: {' '.join(script.provides)}",
    ]
    if script.require_line:
        lines.append(f"# REQUIRE: {' '.join(script.require_line)}")
    if script.before:
        lines.append(f"# BEFORE: {' '.join(script.before)}")
    if script.keywords:
        lines.append(f"# KEYWORD: {' '.join(script.keywords)}")
    lines += [
        "#",
        f"# {script.description}",
        "#",
        "# Generated by procmgmt (bsdrc backend) for FreeBSD rc.subr(8). Run it with",
        f"# 'onestart'/'onestop', or set {script.rcvar}=\"YES\" in rc.conf(5) to start it",
        "# at boot. The values below are defaults: rc.conf(5) may set",
        "# " + ", ".join(f"{p}_{k}" for k in knobs) + ".",
        "",
        "# rc.subr reads name, rcvar, desc, command, procname, pidfile, the signals,",
        "# start_precmd and extra_commands: shellcheck cannot see that use (SC2034).",
        "# shellcheck disable=SC2034",
        "",
        "# The system's rc.subr, not part of this store entry (SC1091).",
        "# shellcheck source=/dev/null",
        f". {quote(script.rc_subr)}",
        "",
        f"name={quote(p)}",
        f"rcvar={quote(script.rcvar)}",
        f"desc={quote(script.description)}",
    ]
    if script.extra_commands:
        lines.append(f"extra_commands={quote(' '.join(script.extra_commands))}")
    lines += [
        "",
        '# rc.conf(5) and rc.conf.d/ settings; they take precedence over the defaults below.',
        'load_rc_config "$name"',
        "",
        f': "${{{script.rcvar}:={script.enable_default}}}"',
    ]
    if script.user:
        lines.append(f': "${{{p}_user:={script.user}}}"')
    if script.chdir:
        lines.append(f': "${{{p}_chdir:={script.chdir}}}"')
    if script.nice is not None:
        lines.append(f': "${{{p}_nice:={script.nice}}}"')
    if script.umask is not None:
        lines.append(f': "${{{p}_umask:={script.umask}}}"')
    for knob, value in sorted(script.rcvar_defaults.items()):
        lines.append(f': "${{{p}_{knob}:={value}}}"')
    if script.environment:
        lines += [
            "",
            "# The environment file is in this script's store entry. rc.subr sets",
            "# rc_service to the script being run, also when /etc/rc sources it at boot",
            "# through a link in the local rc.d directory; realpath resolves the link.",
            'procmgmt_root=$(realpath "${rc_service:-$0}")',
            f"procmgmt_root=${{procmgmt_root%/{script.script_path}}}",
            f': "${{{p}_env_file:=$procmgmt_root/{script.env_path}}}"',
        ]
    lines.append("")
    if script.path:
        lines.append(f'PATH={quote(script.path)}:"$PATH"; export PATH')
    lines += [
        f"command={quote(script.command)}",
    ]
    if script.procname != script.command:
        lines += [
            "# The pid file names another process than command's (daemon(8) writes",
            "# its child's pid with -p; a starter such as pg_ctl leaves the server's):",
            "# rc.subr's pid check must look for that process.",
            f"procname={quote(script.procname)}",
        ]
    lines.append(f"pidfile={quote(script.pid_file)}")
    if script.stop_signal != DEFAULT_STOP_SIGNAL:
        lines.append(f"sig_stop={script.stop_signal}")
    if script.reload_signal != DEFAULT_RELOAD_SIGNAL:
        lines.append(f"sig_reload={script.reload_signal}")
    check = script.readiness
    waits = _ready_sh.checkable(check)
    lines.append(f"start_precmd={p}_prestart")
    if waits:
        lines.append(f"start_postcmd={p}_poststart")
    lines += [f"stop_precmd={p}_trusted", f"reload_precmd={p}_trusted"]
    lines += [
        "",
        "# rc.subr found pid $rc_pid in $pidfile. The user the process runs as can",
        "# write that file: root signals the pid only when that user owns it.",
        "# rc.subr sets rc_pid (SC2154).",
        "# shellcheck disable=SC2154",
        f"{p}_trusted()",
        "{",
        f'	[ -n "${{{p}_user-}}" ] || return 0',
        f'	procmgmt_uid=$(id -u "${{{p}_user}}") || return 1',
        '	if procmgmt_pid_owned "$rc_pid" "$procmgmt_uid"; then',
        "		return 0",
        "	fi",
        '	warn "not trusting $pidfile: pid $rc_pid belongs to uid ${procmgmt_owner:-unknown},"'
        f' "not to ${{{p}_user}}; not signalling it"',
        "	return 1",
        "}",
        "",
        PID_OWNED_SH.rstrip("\n"),
        "",
        "# Runs before the process starts, as root (before the switch to the user).",
        f"{p}_initialize()",
        "{",
        *_snippet(script.initialize),
        "}",
        "",
        f"{p}_prestart()",
        "{",
    ]
    if script.environment:
        lines += [
            f'\tif [ ! -r "${p}_env_file" ]; then',
            f'\t\twarn "cannot read the environment file ${p}_env_file"',
            "\t\treturn 1",
            "\tfi",
        ]
    if isinstance(check, rd.LogLine):
        lines.append("\t# Only log lines written after this size count as ready.")
        lines += ["\t" + line for line in _ready_sh.offset_lines(check)]
    lines += [
        f"\tif ! {p}_initialize; then",
        '\t\twarn "initialize failed"',
        "\t\treturn 1",
        "\tfi",
        f'\tprocmgmt_command_args "${{{p}_chroot-}}" "${{{p}_user-}}" "${{{p}_nice-}}"'
        + (" \\" if script.argv else ""),
    ]
    for i, arg in enumerate(script.argv):
        more = " \\" if i < len(script.argv) - 1 else ""
        lines.append(f"\t    {quote(arg)}{more}")
    lines += ["}", ""]
    if check is not None and waits:
        lines += _poststart_lines(script, check)
    elif check is not None:
        lines += [f"# Readiness ({' '.join(check.describe().split())}) cannot be checked "
                  "from sh: procmgmt's", "# engine waits for it during a switch; this script "
                  "does not.", ""]
    lines += [
        _HELPERS,
        "",
        *([_ready_sh.library([check]).rstrip("\n"), ""] if check is not None and waits
          else []),
        'run_rc_command "$1"',
        "",
    ]
    return "\n".join(lines)


def _poststart_lines(script: RcScriptModel, check: rd.Readiness) -> list[str]:
    """``start_postcmd``: wait until the declared check passes. On timeout the
    process is stopped again and the script exits 1 through rc.subr's ``err``
    (rc.subr ignores a postcmd's status), as systemd fails a unit whose
    ExecStartPost= fails."""
    p = script.name
    wait = _ready_sh.wait_lines(script.file, check, pid_file=script.pid_file,
                                offset='"$procmgmt_ready_offset"', indent="\t")
    return [
        f"# Ready means: {' '.join(check.describe().split())}. procmgmt's engine probes",
        f"# that itself and sets {_ready_sh.READY_WAIT_ENV}=0.",
        f"{p}_poststart()",
        "{",
        f'\tif [ "${{{_ready_sh.READY_WAIT_ENV}:-1}}" = 0 ]; then',
        "\t\treturn 0",
        "\tfi",
        "\tprocmgmt_ready_rc=0",
        *wait[:-1],
        wait[-1] + " || procmgmt_ready_rc=$?",
        '\tif [ "$procmgmt_ready_rc" -ne 0 ]; then',
        '\t\tprocmgmt_ready_pid=$(check_pidfile "$pidfile" "${procname:-$command}")',
        '\t\tif [ -n "$procmgmt_ready_pid" ]; then',
        '\t\t\tkill -s "${sig_stop:-TERM}" "$procmgmt_ready_pid"',
        '\t\t\twait_for_pids "$procmgmt_ready_pid"',
        "\t\tfi",
        '\t\terr 1 "$name did not become ready; stopped it again"',
        "\tfi",
        "}",
        "",
    ]


def _engine_runner(argv: Sequence[str]) -> CommandResult:
    """The default runner: the scripts' own readiness wait is switched off, since
    the engine probes readiness itself, for all processes at once."""
    return subprocess_runner(argv, env={**os.environ, _ready_sh.READY_WAIT_ENV: "0"})


# --- activation -----------------------------------------------------------------------


def _rcvar_line(var: str) -> re.Pattern[str]:
    return re.compile(rf"^\s*(?:export\s+)?{re.escape(var)}=")


def atomic_write(path: str, text: str) -> None:
    """Replace ``path`` by ``text`` atomically, keeping its mode (0644 when new)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=".procmgmt-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read().splitlines(keepends=True)
    except FileNotFoundError:
        return []


def set_rc_conf(path: str, var: str, value: str) -> bool:
    """``sysrc var=value``: replace the first assignment of ``var`` (dropping later
    ones, which would override it) or append one; every other line stays as it
    was. Returns False when the file already said exactly that."""
    lines = _read_lines(path)
    pattern = _rcvar_line(var)
    new_line = f'{var}="{value}"\n'
    out: list[str] = []
    found = False
    for line in lines:
        if pattern.match(line):
            if not found:
                out.append(new_line)
                found = True
            continue
        out.append(line)
    if not found:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(new_line)
    if out == lines:
        return False
    atomic_write(path, "".join(out))
    return True


def unset_rc_conf(path: str, var: str) -> bool:
    """``sysrc -x var``: delete every assignment of ``var``; True if one was there."""
    lines = _read_lines(path)
    pattern = _rcvar_line(var)
    out = [line for line in lines if not pattern.match(line)]
    if out == lines:
        return False
    atomic_write(path, "".join(out))
    return True


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "yes", "true", "on")


class BSDRCActivator(Activator):
    """Runs the generated scripts on a FreeBSD host.

    Default mode: ``<store script> onestart`` / ``onestop``, which works
    without enabling the rcvar and leaves rc.conf alone.

    Boot mode (``PROCMGMT_BSDRC_ENABLE_AT_BOOT=1``, read when the activator
    is created, i.e. by every switch, rollback and undeploy: the original's
    ``--enable-at-boot`` never reached its deploy step): start links the
    script as ``$PROCMGMT_BSDRC_TARGET_DIR/<name>`` (default
    /usr/local/etc/rc.d, the local rc.d directory itself, not its parent),
    writes ``<rcvar>="YES"`` into ``$PROCMGMT_BSDRC_RC_CONF`` (default
    /etc/rc.conf) like sysrc(8) and runs ``<link> start``. Stop undoes that
    whenever it finds our link, whatever the current mode, so an undeploy
    without the variable still cleans up: ``<link> stop``, the rc.conf
    line deleted, the link removed.

    Every command goes through ``runner`` (tests record the plan); status
    reads the pid file here.
    """

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 environ: Mapping[str, str] | None = None,
                 start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        super().__init__(settings)
        env = os.environ if environ is None else environ
        #: Injected runners decide the environment themselves (set
        #: PROCMGMT_READY_WAIT=0 to leave readiness to the engine, as the default does).
        self.runner: Runner = runner or _engine_runner
        self.enable_at_boot = _truthy(env.get("PROCMGMT_BSDRC_ENABLE_AT_BOOT"))
        self.target_dir = env.get("PROCMGMT_BSDRC_TARGET_DIR") or DEFAULT_TARGET_DIR
        self.rc_conf = env.get("PROCMGMT_BSDRC_RC_CONF") or DEFAULT_RC_CONF
        self.start_timeout = start_timeout

    def required_tools(self, gen: Generation) -> list[Tool]:
        """The rc.subr every script sources (unless a runner stands in for the system)."""
        if self.runner is not _engine_runner:
            return []
        paths = sorted({str(p.extra.get("rc_subr") or DEFAULT_RC_SUBR) for p in gen.processes})
        return [Tool("rc.subr", path, "the bsdrc backend runs FreeBSD rc.d scripts; on this "
                     "machine deploy with another process manager (-P)") for path in paths]

    # --- paths -----------------------------------------------------------------------

    def script(self, proc: DeployedProcess) -> str:
        """The script inside ``proc``'s store entry."""
        return os.path.join(proc.path, str(proc.extra.get("script") or f"etc/rc.d/{proc.name}"))

    def link(self, proc: DeployedProcess) -> str:
        """Where boot mode links the script."""
        return os.path.join(self.target_dir, str(proc.extra.get("file") or proc.name))

    def rcvar(self, proc: DeployedProcess) -> str:
        """The process's ``<name>_enable`` variable."""
        return str(proc.extra.get("rcvar") or f"{var_prefix(proc.name)}_enable")

    def _our_link(self, proc: DeployedProcess) -> bool:
        link = self.link(proc)
        return os.path.islink(link) and os.path.realpath(link) == os.path.realpath(
            self.script(proc))

    # --- ordering --------------------------------------------------------------------

    def headers(self, gen: Generation) -> list[RcScript]:
        """The headers of ``gen``'s scripts, parsed back from the files."""
        scripts = []
        for p in gen.processes:
            parsed = parse_file(self.script(p))
            # Name graph nodes by process (file) name for comparison with the engine.
            scripts.append(RcScript(os.path.join(os.path.dirname(parsed.path), p.name),
                                    parsed.provides, parsed.requires, parsed.before,
                                    parsed.keywords))
        return scripts

    def rc_order(self, gen: Generation) -> list[str]:
        """Process names in rcorder order; DeployError on a circular dependency."""
        scripts = self.headers(gen)
        result = rcorder(scripts)
        if result.cycles:
            raise DeployError("the rc scripts' headers have a circular dependency: "
                              + "; ".join(" -> ".join(c) for c in result.cycles))
        return [s.name for s in result.order]

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Check that the engine's start order is one rcorder accepts (an override
        may have changed REQUIRE/PROVIDE), and create the boot-mode target dir."""
        self.rc_order(new)
        graph = dependency_graph(self.headers(new))
        bad = violations([p.name for p in new.processes], graph)
        if bad:
            raise DeployError("the rc scripts' REQUIRE/PROVIDE headers disagree with the "
                              "dependencies: " + ", ".join(f"{a} must start after {b}"
                                                           for a, b in bad))
        if self.enable_at_boot:
            fsutil.ensure_dir(self.target_dir)

    # --- commands --------------------------------------------------------------------

    def _fail(self, proc: DeployedProcess, argv: Sequence[str], result: CommandResult,
              what: str) -> DeployError:
        tail = _activation.tail(result.output)
        return DeployError(f"{proc.name}: '{' '.join(argv)}' {what} (exit status "
                           f"{result.returncode})" + (f":\n{tail}" if tail else ""))

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """``onestart`` (or link + rc.conf + ``start``), then wait for the pid file."""
        if self.enable_at_boot:
            link = self.link(proc)
            tmp = f"{link}.procmgmt-new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.script(proc), tmp)
            os.replace(tmp, link)
            set_rc_conf(self.rc_conf, self.rcvar(proc), "YES")
            argv = [link, "start"]
        else:
            argv = [self.script(proc), "onestart"]
        result = self.runner(argv)
        if result.returncode != 0:
            raise self._fail(proc, argv, result, "failed")
        deadline = time.monotonic() + self.start_timeout
        while not self.status(gen, proc).running:
            if time.monotonic() >= deadline:
                st = self.status(gen, proc)
                raise self._fail(proc, argv, result,
                                 f"returned, but {st.detail} after {self.start_timeout:.0f} s")
            time.sleep(0.05)

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``onestop`` (``stop`` and boot-mode cleanup when our link is installed).

        rc.subr's stop fails for a process that is not running; that is
        success here (it is stopped), anything else is an error.
        """
        boot = self._our_link(proc)
        argv = [self.link(proc), "stop"] if boot else [self.script(proc), "onestop"]
        result = self.runner(argv)
        if result.returncode != 0 and self.status(gen, proc).running:
            raise self._fail(proc, argv, result, "failed")
        if boot:
            unset_rc_conf(self.rc_conf, self.rcvar(proc))
            os.unlink(self.link(proc))

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """The pid file names a live process (read here, no command run); the
        first word of its first line, as rc.subr reads it."""
        return pid_file_status(proc, self.settings)

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """start/stop/status here; any other rc.subr command (reload, restart, rcvar,
        ...) runs through the script, with the ``one`` prefix unless boot mode
        installed it."""
        if activity in ("start", "stop", "status"):
            return super().activity(gen, proc, activity)
        boot = self._our_link(proc)
        argv = [self.link(proc), activity] if boot else [self.script(proc), f"one{activity}"]
        result = self.runner(argv)
        if result.output:
            print(result.output, end="" if result.output.endswith("\n") else "\n")
        return result.returncode
