"""A start still in flight when procmgmt dies: the crash-point tests' worst case.

Generation 1 (``extra_params["generation"] == 1``): ``anchor`` only.
Generation 2 adds ``lagging``, a daemon whose start takes ``lag`` seconds
(its start script waits for it, as for any forking daemon), and ``quick``, a
foreground process whose start returns at once. Both start in parallel, so
with ``PROCMGMT_CRASH_AT=started`` procmgmt dies right after ``quick``
started, while the start of ``lagging`` is still running: that start
finishes *after* the crash, behind the back of whatever recovers.

Generation 3 has ``anchor``, ``quick`` and ``slowexit``, which takes a
second to shut down after SIGTERM (and logs each SIGTERM to
``<lib dir>/slowexit.term``). Switching from 3 to 1 stops both in
parallel; with ``PROCMGMT_CRASH_AT=stopped`` procmgmt dies once ``quick``
stopped, while ``slowexit`` is still shutting down: it exits *after* the
crash, behind the back of whatever recovers.
"""

from __future__ import annotations

import os

from procmgmt import Instance, Process, Settings


def processes(settings: Settings) -> dict[str, Instance]:
    generation = int(settings.extra_params.get("generation", 2))
    lag = float(settings.extra_params.get("lag", 1.5))
    anchor = Process(name="anchor", foreground_process="/bin/sleep",
                     foreground_process_args=["600"])
    result = {"anchor": Instance(anchor)}
    if generation == 3:
        result["quick"] = Instance(Process(
            name="quick", foreground_process="/bin/sleep", foreground_process_args=["600"],
            dependencies=[anchor]))
        term_log = os.path.join(settings.lib_dir, "slowexit.term")
        script = ("trap 'echo TERM >> \"$TERM_LOG\"; sleep 1; exit 0' TERM; "
                  "while :; do sleep 0.2; done")
        result["slowexit"] = Instance(Process(
            name="slowexit", foreground_process="/bin/sh", foreground_process_args=["-c", script],
            environment={"TERM_LOG": term_log}, dependencies=[anchor]))
    elif generation == 2:
        pid_file = os.path.join(settings.runtime_dir, "lagging.pid")
        daemon = f'sleep {lag}; sleep 600 >/dev/null 2>&1 & echo $! > "$PIDFILE"'
        result["lagging"] = Instance(Process(
            name="lagging", daemon="/bin/sh", daemon_args=["-c", daemon], foreground_process=None,
            pid_file=pid_file, environment={"PIDFILE": pid_file}, dependencies=[anchor]))
        result["quick"] = Instance(Process(
            name="quick", foreground_process="/bin/sleep", foreground_process_args=["600"],
            dependencies=[anchor]))
    return result
