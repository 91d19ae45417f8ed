"""s6 backend: translate a process into the native model of its s6 service directory.

Every process runs through ``data/start``, the shared foreground proxy: for a
foreground program it only sets directory, umask, environment, nice level and
user and then execs (s6 supervises the program itself); a daemon-only process
is wrapped (the proxy waits for its pid file and forwards the stop signal).
Ordering is written into the files: each ``run`` waits for its dependencies'
service directories with ``s6-svwait`` (see :mod:`.servicedir`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.base import (
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
from procmgmt.backends.s6 import servicedir
from procmgmt.backends.s6.activator import S6Activator
from procmgmt.backends.shared import liveness
from procmgmt.backends.shared.proxy import (
    DEFAULT_WAIT_TIMEOUT,
    PROXY_KEY,
    proxy_params,
    wraps_daemon,
)
from procmgmt.backends.shared.ready import checkable, spec_problems
from procmgmt.errors import Problem
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import Settings

#: Milliseconds s6-supervise waits after the stop signal before SIGKILL.
TIMEOUT_KILL_MS = 10000
#: s6-log's ``n``/``s`` without --log-max-bytes (its own defaults are n10 s99999).
DEFAULT_LOG_KEEP, DEFAULT_LOG_SIZE = 10, 1000000
#: s6-log rotates at no fewer bytes than this, whatever ``s`` says (s6-log(8)).
S6_LOG_MIN_SIZE = 4096
#: s6-supervise's default timeout-finish, kept on top of a finish's restart delay.
TIMEOUT_FINISH_MS = 5000
#: The largest max-death-tally s6-supervise accepts.
MAX_DEATH_TALLY = 4096


def log_dir(spec: ProcessSpec, settings: Settings) -> str:
    """s6-log's directory of a process (``current`` is the live file), in the log dir
    only root (or the deployer) can write: s6-log runs as the deployer."""
    return os.path.join(settings.log_dir, spec.instance_name or spec.name)


class S6Backend(Backend):
    """Generates s6 service directories; deploys with a procmgmt-owned s6-svscan."""

    name = "s6"
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.EMULATED,
        ordering=Ordering.WAITS,
        ordering_detail="each run script waits with s6-svwait (-U when the dependency "
                        "notifies readiness, else -u) for its dependencies",
        user_switching=Support.EMULATED,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.RUN,
        readiness=Support.NATIVE,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        lifecycle=Lifecycle(default_restart="always", restart_native=frozenset({"always"}),
                            restart_emulated=frozenset({"no", "on-failure"}),
                            restart_delay=Support.EMULATED, restart_max=Support.NATIVE,
                            default_stop_timeout=TIMEOUT_KILL_MS / 1000,
                            stop_timeout=Support.NATIVE, liveness=Support.EMULATED),
        notes="readiness: notification-fd written by s6-notifyoncheck polling the "
              "generated sh probe (data/check); Notify (sd_notify) has no s6 "
              "equivalent: only the engine waits for it; daemon-only processes "
              "run under the foreground proxy; output goes to an s6-log logger",
    )

    def _log_rotation(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, int]:
        """s6-log's ``n`` (archives kept) and ``s`` (bytes before rotating) from
        --log-max-bytes/--log-backups, so those options hold under s6 as elsewhere."""
        rotation = ctx.settings.log_rotation()
        if rotation is None:
            return {"keep": DEFAULT_LOG_KEEP, "size": DEFAULT_LOG_SIZE}
        size, keep = rotation
        if size < S6_LOG_MIN_SIZE:
            ctx.warn(spec, self.name, f"s6-log rotates at no less than {S6_LOG_MIN_SIZE} "
                     f"bytes: --log-max-bytes {size} becomes {S6_LOG_MIN_SIZE}")
            size = S6_LOG_MIN_SIZE
        return {"keep": keep, "size": size}

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The service directory's settings; the start script's under ``_proxy``."""
        settings = ctx.settings
        user = spec.effective_user(settings)
        env = dict(spec.environment)
        path = spec.path_value()
        if path:
            env["PATH"] = f"{path}:{SYSTEM_PATH}"
        wrap = spec.foreground is None
        check = spec.readiness
        # A PidFile check without a path names the process's own pid file, which a
        # foreground program does not write: the start script writes it before exec.
        write_pid = (not wrap and isinstance(check, rd.PidFile) and not check.path)
        pid_file = spec.derived_pid_file(settings) if wrap or write_pid else None
        deps = {}
        for dep in spec.dependencies:
            other = ctx.specs.get(dep)
            if other is not None:
                deps[dep] = "ready" if checkable(other.readiness) else "up"
        native: dict[str, Any] = {
            "dependencies": deps,
            "wait_timeout": DEFAULT_WAIT_TIMEOUT,
            "notification_fd": servicedir.NOTIFICATION_FD if checkable(check) else None,
            "check": check.to_json() if checkable(check) and check is not None else None,
            "pid_file": pid_file,
            "down": True,
            # A wrapped daemon's proxy traps TERM and forwards the daemon's signal.
            "down_signal": "TERM" if wrap else spec.stop_signal,
            "timeout_kill": (TIMEOUT_KILL_MS if spec.stop_timeout is None
                             else max(1, math.ceil(spec.stop_timeout * 1000))),
            "log": {"dir": log_dir(spec, settings), **self._log_rotation(spec, ctx)},
            PROXY_KEY: {
                # The start script runs as root (or the deployer) and makes the pid dir.
                **proxy_params(spec, settings, write_pid=write_pid, user=user),
                "environment": env,
                # The start script execs the program through data/liveness.
                "liveness": "liveness" if spec.liveness is not None else None,
            },
            "liveness": spec.liveness.to_json() if spec.liveness is not None else None,
        }
        # Written only when set: a model without them keeps s6's own behaviour
        # (restart after every death) and its service directory as before.
        for key in ("restart", "restart_delay", "restart_max"):
            if getattr(spec, key) is not None:
                native[key] = getattr(spec, key)
        if spec.restart_delay is not None:
            # ./finish sleeps the delay; s6-supervise kills a finish after timeout-finish.
            native["timeout_finish"] = math.ceil(spec.restart_delay * 1000) + TIMEOUT_FINISH_MS
        return native

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The files of the process's service directory."""
        return servicedir.render(spec.name, native)

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Where the service directory and the log are, and whether it notifies."""
        extra: dict[str, Any] = {"service_dir": servicedir.service_dir(spec.name),
                                 "notifies": native.get("notification_fd") is not None
                                 and native.get("check") is not None,
                                 "wraps_daemon": wraps_daemon(native.get(PROXY_KEY))}
        if spec.stop_timeout is not None:
            # The activator waits this long (and a little) for a stop.
            extra["stop_timeout"] = int(native.get("timeout_kill", TIMEOUT_KILL_MS)) / 1000
        log = native.get("log")
        if isinstance(log, dict) and isinstance(log.get("dir"), str):
            extra["log_dir"] = log["dir"]
            extra["log_file"] = os.path.join(log["dir"], "current")
        return extra

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """What the generated sh cannot carry: NUL characters, uncheckable patterns."""
        problems: list[tuple[str, str, str]] = []
        for spec in specs:
            for fieldname, words in (("daemon_args", (spec.daemon or "", *spec.daemon_args)),
                                     ("foreground_process_args",
                                      (spec.foreground or "", *spec.foreground_args))):
                if any("\0" in w for w in words):
                    problems.append((spec.name, fieldname, "contains a NUL character"))
            problems.extend(spec_problems(spec))
            problems.extend(liveness.spec_problems(spec))
            if spec.restart_max is not None and spec.restart_max + 1 > MAX_DEATH_TALLY:
                problems.append((spec.name, "restart_max", f"s6 remembers at most "
                                 f"{MAX_DEATH_TALLY} deaths: at most {MAX_DEATH_TALLY - 1}"))
        return ctx.problems(problems)

    def activator(self, settings: Settings) -> S6Activator:
        """An s6-svscan per (state dir, profile), started on demand."""
        return S6Activator(settings)
