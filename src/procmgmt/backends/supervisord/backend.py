"""supervisord backend: one ``[program:<name>]`` file per process, one supervisord per profile.

Translation prefers foreground processes (supervisord supervises a child it
forked). Daemon-only processes, processes with an ``initialize`` snippet, and
processes whose dependency declares a readiness check (priorities only order
the spawns: the proxy waits until the check passes, see
:mod:`procmgmt.backends.shared.ready`) run through the foreground proxy
(:mod:`procmgmt.backends.shared.proxy`), which the program file finds relative to
itself (``%(here)s/../bin/<name>-proxy``), so the same files work from a store
entry, from procmgmt's link directory and from ``procmgmt generate`` output.

Values are encoded by :mod:`.format`; what supervisord's format cannot hold is
rejected by :meth:`SupervisordBackend.validate` (spec values) or by
:meth:`SupervisordBackend.render` (override values) instead of being mangled.
Deploying is :mod:`.activator`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from procmgmt.backends.base import (
    ALL_RESTART_POLICIES,
    SH_READINESS,
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
from procmgmt.backends.shared import liveness
from procmgmt.backends.shared.liveness import liveness_file
from procmgmt.backends.shared.proxy import (
    PROXY_KEY,
    generate,
    options_from_native,
    proxy_file,
    proxy_params,
    readiness_options,
    readiness_pid_file,
    uses_proxy,
    wraps_daemon,
)
from procmgmt.backends.shared.ready import spec_problems
from procmgmt.backends.supervisord.activator import SupervisordActivator
from procmgmt.backends.supervisord.external import SETTINGS
from procmgmt.backends.supervisord.format import (
    HERE,
    VALUE_MAX,
    Raw,
    command_word_problem,
    env_problem,
    program_file,
    render_program,
    value_problem,
)
from procmgmt.errors import Problem
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import Settings


def _truthy(value: Any) -> bool:
    """A supervisord boolean (``autostart=false``, possibly a string from an override)."""
    return str(value).strip().lower() not in ("false", "0", "no", "off", "none", "")


#: ``Process.restart`` as ``autorestart``: "unexpected" restarts after an exit
#: status not in ``exitcodes`` (0), i.e. after a failure; it is also what a
#: model without ``restart`` gets.
AUTORESTART = {"no": False, "on-failure": "unexpected", "always": True}
#: supervisord's own stopwaitsecs, written for a model without ``stop_timeout``.
DEFAULT_STOPWAITSECS = 10


def _uses_proxy(spec: ProcessSpec, settings: Settings, ctx: BuildContext) -> bool:
    """The shared rule (:func:`procmgmt.backends.shared.proxy.uses_proxy`), plus what
    supervisord cannot do itself: a negative nice level for a process with a user
    (it needs root before dropping to that user)."""
    user = spec.effective_user(settings)
    return uses_proxy(spec, ctx, manager_lacks=user is not None
                      and spec.nice is not None and spec.nice < 0)


def _nice_command(ctx: BuildContext) -> str:
    """``nice`` by absolute path: supervisord looks bare names up in the program's PATH."""
    return ctx.which("nice") or "nice"


#: Key of the liveness declaration (JSON) in the native model (never rendered as a
#: key): render writes the liveness wrapper the command starts with.
LIVENESS_KEY = "_liveness"


class SupervisordBackend(Backend):
    """Generates supervisord program sections; deploys with a procmgmt-owned supervisord."""

    name = "supervisord"
    own_settings = SETTINGS
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.NATIVE,
        ordering=Ordering.PRIORITY,
        ordering_detail="priority = 1 + max priority of the dependencies",
        user_switching=Support.NATIVE,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.RUN,
        readiness=Support.EMULATED,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        lifecycle=Lifecycle(default_restart="on-failure", restart_native=ALL_RESTART_POLICIES,
                            restart_max=Support.WARNED,
                            default_stop_timeout=DEFAULT_STOPWAITSECS,
                            stop_timeout=Support.NATIVE, liveness=Support.EMULATED),
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
        live_file = liveness_file(spec.name)
        if spec.liveness is not None:
            native[LIVENESS_KEY] = spec.liveness.to_json()
        if _uses_proxy(spec, settings, ctx):
            root_first = bool(spec.initialize.strip()) or (spec.nice is not None and spec.nice < 0)
            native["command"] = [Raw(f"{HERE}/../{proxy_file(spec.name)}")]
            write_pid = readiness_pid_file(spec, ctx)
            native[PROXY_KEY] = {
                # The pid dir is created by a proxy that starts as root (as the
                # user, it could not).
                **proxy_params(spec, settings, write_pid=write_pid,
                               user=user if root_first else None,
                               pid_dir=root_first or not user),
                **readiness_options(spec, ctx, settings, pid_waits=False),
                "liveness": (live_file.removeprefix("bin/")
                             if spec.liveness is not None else None),
            }
            if user and not root_first:
                native["user"] = user
        else:
            assert spec.foreground is not None
            argv = [spec.foreground, *spec.foreground_args]
            if spec.nice is not None:
                argv = [_nice_command(ctx), "-n", str(spec.nice), *argv]
            if spec.liveness is not None:
                argv = [Raw(f"{HERE}/../{live_file}"), *argv]
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
            "autorestart": AUTORESTART[spec.restart or "on-failure"],
            "startsecs": 1,
            "startretries": 3 if spec.restart_max is None else spec.restart_max,
            "stopsignal": spec.stop_signal,
            "stopwaitsecs": (DEFAULT_STOPWAITSECS if spec.stop_timeout is None
                             else math.ceil(spec.stop_timeout)),
            "stopasgroup": True,
            "killasgroup": True,
            "stdout_logfile": spec.log_file(settings),
            "redirect_stderr": True,
        })
        # Log rotation is supervisord's own (rename to .1 ... .N); its defaults
        # (50MB, 10 backups) stay unwritten unless the settings say otherwise.
        if settings.log_max_bytes is not None:
            native["stdout_logfile_maxbytes"] = settings.log_max_bytes
        rotation = settings.log_rotation()
        if settings.log_backups is not None or rotation is not None:
            native["stdout_logfile_backups"] = (rotation[1] if rotation is not None
                                                else settings.log_backups)
        if spec.restart_max is not None:
            ctx.warn(spec, self.name, f"restart_max={spec.restart_max} is startretries, "
                     "which counts only exits within startsecs (1 s) of a start: a process "
                     "that runs longer is restarted without limit")
        return native

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The program file and, when the model has proxy parameters, the proxy."""
        files = [File(program_file(spec.name), render_program(spec.name, native))]
        proxy = native.get(PROXY_KEY)
        if proxy:
            opts = options_from_native(proxy)
            files.append(File(proxy_file(spec.name), generate(opts), mode=0o755))
        live = liveness.of(native.get(LIVENESS_KEY))
        if live is not None:
            files.append(File(liveness_file(spec.name), liveness.wrapper(
                spec.name, live, pid_file=spec.derived_pid_file(ctx.settings)), mode=0o755))
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
        if spec.stop_timeout is not None:
            # The activator waits this long (and a little) for a stop.
            extra["stop_timeout"] = native.get("stopwaitsecs", DEFAULT_STOPWAITSECS)
        if native.get(LIVENESS_KEY):
            extra["liveness"] = liveness_file(spec.name)
        if native.get(PROXY_KEY):
            extra["proxy"] = proxy_file(spec.name)
            extra["wraps_daemon"] = wraps_daemon(native.get(PROXY_KEY))
        return extra

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
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
            if command_size > VALUE_MAX and not _uses_proxy(spec, settings, ctx):
                add("foreground_process_args", f"the command is about {command_size} "
                    f"characters, more than the {VALUE_MAX} procmgmt allows in supervisord's "
                    "command= (parsed in time growing with the square of its length)")
            if spec.path_value():
                problem = env_problem("PATH", f"{spec.path_value()}:{SYSTEM_PATH}")
                if problem:
                    add("path", problem)
            if _uses_proxy(spec, settings, ctx):
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
            if ctx.dependents(spec.name):
                problems.extend(spec_problems(spec))
            problems.extend(liveness.spec_problems(spec))
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> SupervisordActivator:
        """A supervisord per (state dir, profile), started on demand."""
        return SupervisordActivator(settings)

