"""Restart policies and the stop timeout, for tests/e2e/test_restart_policy.py.

Each ``<policy>-<status>`` process appends a line to ``STATE_DIR/runs-NAME`` when
it starts, runs 1.5 s (longer than supervisord's startsecs, so every run counts
as started) and exits with ``status``. ``stubborn`` ignores SIGTERM and has a
stop timeout of 1 s: only SIGKILL ends it.
"""

from procmgmt import Process

RUN = 'echo run >> "$RUNS"; sleep 1.5; exit "$STATUS"'


def processes(settings):
    def once(policy, status):
        name = f"{policy}-{status}"
        return Process(name=name, foreground_process="/bin/sh",
                       foreground_process_args=["-c", RUN, name],
                       environment={"RUNS": f"{settings.state_dir}/runs-{name}",
                                    "STATUS": str(status)},
                       restart=policy)

    procs = [once("no", 1), once("on-failure", 1), once("on-failure", 0), once("always", 0)]
    stubborn = Process(name="stubborn", foreground_process="/bin/sh",
                       foreground_process_args=["-c", "trap '' TERM; while :; do sleep 0.1; done",
                                                "stubborn"],
                       stop_timeout=1)
    return {p.name: p for p in [*procs, stubborn]}
