"""sysvinit backend: self-contained LSB init scripts plus rcN.d S/K links.

The original generated scripts on top of the Linux From Scratch
init-functions and libslack's ``daemon``, which tied every script to a
patched library and an extra package. Here every script is plain POSIX
``sh`` carrying its own small helpers, so it runs anywhere: under a real
sysvinit, under ``dash`` from a container entry point, or by an unprivileged
user straight from the store. No init system, no /lib/lsb/init-functions and
no procmgmt installation are needed at run time.

Mode selection follows the original's table: a process that can daemonize
runs as a daemon (it forks and writes its own pid file; the script waits
until the pid file names a live process). A foreground-only process is
daemonized by the script itself: ``setsid`` when available, stdin from
/dev/null, output appended to the log file, and the pid written to the pid
file.

The native model is a plain dict (see :meth:`SysVInitBackend.translate`)
and the script is rendered from that dict only (:mod:`.script`), so a user
override can change anything the script does.
"""

from __future__ import annotations

import math
import os
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
from procmgmt.backends.shared import liveness, ready
from procmgmt.backends.shared.logrotation import native_rotation
from procmgmt.backends.sysvinit.activator import SysVInitActivator
from procmgmt.backends.sysvinit.script import (
    DEFAULT_START,
    DEFAULT_START_GRACE,
    DEFAULT_START_TIMEOUT,
    DEFAULT_STOP,
    DEFAULT_STOP_TIMEOUT,
    MAX_SEQUENCE,
    MIN_SEQUENCE,
    SUPPORTED_RUNLEVELS,
    render_script,
    runlevels_of,
    seconds_of,
    sequence_of,
    signal_of,
)
from procmgmt.deploy.state import directory_mode
from procmgmt.errors import Problem
from procmgmt.model.process import RESTART_WINDOW
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: Policies that restart: the script runs the process under its loop.
RESTARTING = ("on-failure", "always")
#: Seconds the loop waits before a restart when the model gives no restart_delay.
DEFAULT_RESTART_DELAY = 1


class SysVInitBackend(Backend):
    """LSB init scripts in ``etc/rc.d/init.d`` with ``rcN.d`` S/K links."""

    name = "sysvinit"
    capabilities = Capabilities(
        prefers=ProcessMode.DAEMON,
        dependencies=Support.NATIVE,
        ordering=Ordering.SEQUENCE,
        ordering_detail="rcN.d S/K sequence numbers, LSB Should-Start",
        user_switching=Support.NATIVE,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.RUN,
        readiness=Support.EMULATED,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.EVERY_PROCESS,
        lifecycle=Lifecycle(default_restart="no", restart_native=frozenset({"no"}),
                            restart_emulated=frozenset(RESTARTING),
                            restart_delay=Support.EMULATED, restart_max=Support.EMULATED,
                            default_stop_timeout=DEFAULT_STOP_TIMEOUT,
                            stop_timeout=Support.EMULATED, liveness=Support.EMULATED),
        notes="self-contained POSIX sh scripts; foreground processes are daemonized "
              "by the script (setsid, log file, pid file); readiness: start returns once "
              "the declared check passes (generated sh probes; Notify only by the engine)",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The native model of one init script.

        Keys: name, description, provides, required_start/required_stop,
        should_start/should_stop (dependency names), runlevels (None, or a
        list that sets Default-Start and makes Default-Stop the rest),
        supported_runlevels, default_start/default_stop, sequence,
        kill_sequence, umask, path (prepended to PATH), environment,
        directory, nice, user, initialize, mode ("daemon" or "foreground"),
        command (argv), pid_file, pid_dir (the process's own pid directory
        that start creates, or None), log_file, log_rotation (foreground mode:
        None, the file only grows, or {"max_bytes": N, "backups": K}: start
        writes the output through the rotating writer), directories ([path, octal mode]
        pairs start creates after initialize when missing), reload_signal,
        stop_signal (what stop sends first; SIGKILL follows after stop_timeout),
        start_timeout,
        stop_timeout, start_grace, readiness (the declaration as JSON, or None:
        start waits for it), liveness (the declaration as JSON, or None:
        foreground mode runs the program under the liveness wrapper),
        activities (name -> raw shell body) and remove_activities.
        """
        settings = ctx.settings
        # A restarted process runs in the foreground under the script's loop.
        supervise = spec.restart in RESTARTING and spec.foreground is not None
        if spec.daemon and not supervise:
            mode, command = "daemon", [spec.daemon, *spec.daemon_args]
        elif spec.foreground:
            mode, command = "foreground", [spec.foreground, *spec.foreground_args]
        else:
            raise ValueError(f"{spec.name}: neither a daemon nor a foreground process to run")
        deps = list(spec.dependencies)
        return {
            "name": spec.name,
            "description": spec.description,
            "provides": [spec.name],
            "required_start": [],
            "required_stop": [],
            "should_start": deps,
            "should_stop": list(deps),
            "runlevels": None,
            "supported_runlevels": list(SUPPORTED_RUNLEVELS),
            "default_start": list(DEFAULT_START),
            "default_stop": list(DEFAULT_STOP),
            "sequence": spec.rank,
            "kill_sequence": MAX_SEQUENCE - spec.rank + MIN_SEQUENCE,
            "umask": spec.umask,
            "path": spec.path_value(),
            "environment": dict(spec.environment),
            "directory": spec.directory,
            "nice": spec.nice,
            "user": spec.effective_user(settings),
            "initialize": spec.initialize,
            "mode": mode,
            "command": command,
            "pid_file": spec.derived_pid_file(settings),
            "pid_dir": spec.own_pid_dir(settings),
            "log_file": spec.log_file(settings),
            "log_rotation": native_rotation(settings),
            # What start creates when missing (a fresh state dir, generated files
            # run without procmgmt): the pid file's and the log file's directories
            # (an own pid directory is procmgmt_make_piddir's, owned by the user).
            "directories": _directories(
                settings,
                ([] if spec.own_pid_dir(settings) else [spec.derived_pid_file(settings)])
                + ([spec.log_file(settings)] if mode == "foreground" else [])),
            "reload_signal": spec.reload_signal or "HUP",
            "stop_signal": spec.stop_signal,
            "start_timeout": DEFAULT_START_TIMEOUT,
            "stop_timeout": (DEFAULT_STOP_TIMEOUT if spec.stop_timeout is None
                             else math.ceil(spec.stop_timeout)),
            "start_grace": DEFAULT_START_GRACE,
            "readiness": (spec.readiness.to_json()
                          if isinstance(spec.readiness, rd.Readiness) else None),
            "activities": {
                "start": "procmgmt_start",
                "stop": "procmgmt_stop",
                "reload": "procmgmt_reload",
                "restart": "procmgmt_stop && procmgmt_start",
                "status": "procmgmt_status",
            },
            "remove_activities": [],
            "liveness": (spec.liveness.to_json()
                         if isinstance(spec.liveness, rd.Liveness) else None),
            **({"restart": {"policy": spec.restart,
                            "delay": (DEFAULT_RESTART_DELAY if spec.restart_delay is None
                                      else spec.restart_delay),
                            "max": spec.restart_max, "window": RESTART_WINDOW}}
               if supervise else {}),
        }

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The init script (0755) and its rcN.d links."""
        name = str(native["name"])
        start_levels, stop_levels = runlevels_of(native)
        sequence = sequence_of(native, "sequence")
        kill_sequence = sequence_of(native, "kill_sequence")
        script = f"etc/rc.d/init.d/{name}"
        files = [File(script, render_script(native), mode=0o755)]
        files += [File(f"etc/rc.d/rc{level}.d/S{sequence:02d}{name}", symlink=f"../init.d/{name}")
                  for level in start_levels]
        files += [File(f"etc/rc.d/rc{level}.d/K{kill_sequence:02d}{name}",
                       symlink=f"../init.d/{name}")
                  for level in stop_levels]
        return files

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """Script path, sequence, pid file and timeouts, for the activator."""
        return {
            "script": f"etc/rc.d/init.d/{native['name']}",
            "sequence": sequence_of(native, "sequence"),
            "mode": native.get("mode"),
            "pid_file": native.get("pid_file"),
            "log_file": native.get("log_file"),
            "start_timeout": seconds_of(native, "start_timeout", DEFAULT_START_TIMEOUT),
            "stop_timeout": seconds_of(native, "stop_timeout", DEFAULT_STOP_TIMEOUT),
            "stop_signal": signal_of(native, "stop_signal", "TERM"),
            # The restart loop's count of restarts (supervise.sh writes it).
            **({"restarts_file": f"{native.get('pid_file')}.restarts"}
               if native.get("restart") and native.get("mode") == "foreground" else {}),
            # The stop activity is the generated one: the activator may do the
            # same steps itself (no shell per process) when it stops many.
            "native_stop": (native.get("activities") or {}).get("stop") == "procmgmt_stop"
            and "stop" not in (native.get("remove_activities") or []),
        }

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """A dependency chain deeper than the two-digit sequence numbers allow; a
        readiness declaration the generated sh check cannot express."""
        return ctx.problems([
            (spec.name, "dependencies",
             f"dependency chain is {spec.rank + 1} levels deep; init script sequence "
             f"numbers are two digits ({MIN_SEQUENCE}-{MAX_SEQUENCE})")
            for spec in specs
            if spec.rank + MIN_SEQUENCE > MAX_SEQUENCE
        ] + [row for spec in specs for row in ready.spec_problems(spec)]
          + [row for spec in specs for row in liveness.spec_problems(spec)]
          + [row for spec in specs for row in _restart_problems(spec)])

    def activator(self, settings: Settings) -> Activator:
        """Runs the scripts directly: no init system is involved."""
        return SysVInitActivator(settings)


def _restart_problems(spec: ProcessSpec) -> list[tuple[str, str, str]]:
    """What the supervising loop cannot do: restart a self-daemonizing process (it
    exits at once), or notice a stop by SIGINT/SIGQUIT (a shell started in the
    background ignores both, so it would restart the stopped program)."""
    if spec.restart not in RESTARTING:
        return []
    if spec.foreground is None:
        return [(spec.name, "restart", "the init script restarts only a foreground "
                 "program: give the process a foreground_process")]
    if spec.stop_signal in ("INT", "QUIT"):
        return [(spec.name, "stop_signal", f"the init script's restart loop cannot "
                 f"notice SIG{spec.stop_signal} (a background shell ignores it): use "
                 "another stop signal or no restart")]
    return []


def _directories(settings: Settings, files: list[str]) -> list[list[str]]:
    """[directory, mode] of each file's directory, with procmgmt's mode for it."""
    dirs = dict.fromkeys(os.path.dirname(f) for f in files)
    return [[d, f"{directory_mode(settings, d):04o}"] for d in dirs if d and d != "/"]
