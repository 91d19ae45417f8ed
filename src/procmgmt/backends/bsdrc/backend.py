"""BSD rc backend: translating a process into the native model of an rc.d script.

The script itself is rendered by :mod:`.script` from the checked model
(:mod:`.model`); its module docstring says how the pieces map to rc.subr(8)
and how ``command_args`` is quoted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.base import (
    SH_READINESS,
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    Coverage,
    File,
    Lifecycle,
    Ordering,
    PidFiles,
    Privilege,
    ProcessMode,
    Support,
)
from procmgmt.backends.bsdrc.activator import SETTINGS, BSDRCActivator
from procmgmt.backends.bsdrc.model import (
    DEFAULT_DAEMON_PROGRAM,
    DEFAULT_KEYWORDS,
    DEFAULT_RC_SUBR,
    DEFAULT_RELOAD_SIGNAL,
    DEFAULT_REQUIRES,
    SAFE_WORD,
    RcScriptModel,
    var_prefix,
)
from procmgmt.backends.bsdrc.script import render_env_file, render_log_writer, render_script
from procmgmt.backends.shared import ready
from procmgmt.backends.shared.logrotation import native_rotation
from procmgmt.errors import Problem
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

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


def _restart_flags(spec: ProcessSpec) -> list[str]:
    """daemon(8)'s supervision flags for ``restart="always"``: ``-r`` restarts after
    its one-second delay, ``-R SECS`` after the model's (whole seconds, at least 1)."""
    if spec.restart != "always":
        return []
    if spec.restart_delay is None:
        return ["-r"]
    return ["-R", str(max(1, math.ceil(spec.restart_delay)))]


def _child_pid_file(pid_file: str) -> str:
    """Where a supervising daemon(8) writes its child's pid: beside its own pid file."""
    stem = pid_file.removesuffix(".pid")
    return f"{stem}.child.pid"


class BSDRCBackend(Backend):
    """FreeBSD rc.d scripts (rc.subr), ordered by rcorder over PROVIDE/REQUIRE."""

    name = "bsdrc"
    own_settings = SETTINGS
    capabilities = Capabilities(
        prefers=ProcessMode.DAEMON,
        dependencies=Support.NATIVE,
        ordering=Ordering.EDGES,
        ordering_detail="rcorder over PROVIDE/REQUIRE",
        user_switching=Support.NATIVE,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.GENERATED,
        readiness=Support.EMULATED,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.EVERY_PROCESS,
        # daemon(8) -r/-R restarts after every exit; rc.subr's stop waits without a
        # limit, a stop_timeout is a generated stop_cmd (stop.sh).
        lifecycle=Lifecycle(default_restart="no", restart_native=frozenset({"no", "always"}),
                            restart_delay=Support.NATIVE, stop_timeout=Support.EMULATED),
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
        log_rotation (max_bytes and backups of the rotating log writer, or
        None), initialize, extra_commands, rcvar_defaults (more ``<name>_<var>``
        defaults), stop_timeout (whole seconds to SIGKILL; unset: rc.subr's
        stop, no limit), child_pid_file (the supervised child's pid, for that
        stop) and readiness (the declaration as JSON, or None: start waits
        for it in ``start_postcmd``).
        """
        settings = ctx.settings
        # A restarted process runs in the foreground under daemon(8), which restarts it.
        supervise = spec.restart == "always" and spec.foreground is not None
        if spec.daemon and not supervise:
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
            "daemon_flags": ["-f", *_restart_flags(spec)],
            "pid_file": spec.derived_pid_file(settings),
            # None: the process of the pid file is the program (daemon mode, or
            # the child daemon(8) writes in foreground mode); a supervising
            # daemon(8) writes its own pid, so rc.subr checks for it.
            "procname": DEFAULT_DAEMON_PROGRAM if supervise else spec.pid_file_program,
            "log_file": spec.log_file(settings, opened_as_user=True),
            # --log-max-bytes/--log-backups: daemon(8) writes into the rotating
            # log writer's fifo (foreground mode; None: the log only grows).
            "log_rotation": native_rotation(settings),
            "stop_signal": spec.stop_signal,
            "reload_signal": spec.reload_signal or DEFAULT_RELOAD_SIGNAL,
            **({"supervise": True} if supervise else {}),
            # A stop_cmd sends SIGKILL this many seconds after the stop signal; a
            # supervising daemon(8) also writes its child's pid for it.
            **({} if spec.stop_timeout is None else {
                "stop_timeout": max(1, math.ceil(spec.stop_timeout)),
                **({"child_pid_file": _child_pid_file(spec.derived_pid_file(settings))}
                   if supervise else {})}),
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
        """The rc script (0755), its env file when there is an environment and the
        log writer program (0755) when the log rotates."""
        script = RcScriptModel.from_native(native)
        files = [File(script.script_path, render_script(script), mode=0o755)]
        if script.environment:
            files.append(File(script.env_path, render_env_file(script)))
        if script.log_rotation:
            files.append(File(script.log_writer_path, render_log_writer(script), mode=0o755))
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

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
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
                if value is not None and not SAFE_WORD.match(value):
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
            if spec.restart == "always" and spec.foreground is None:
                problems.append((spec.name, "restart", "daemon(8) restarts only a foreground "
                                 "program: give the process a foreground_process (a "
                                 "self-daemonizing one is not supervised)"))
            if spec.restart == "always" and spec.stop_signal != "TERM":
                problems.append((spec.name, "stop_signal", "daemon(8) passes only SIGTERM on "
                                 "to the program it restarts: use the default stop signal "
                                 "or no restart"))
            problems += ready.spec_problems(spec)
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> Activator:
        """Drives the scripts with ``onestart``/``onestop`` (or boot mode, see the activator)."""
        return BSDRCActivator(settings)
