"""Liveness checks as POSIX ``sh``: a watcher beside the program, for every manager.

No process manager probes a running process with a check of the model's
kinds: systemd's ``WatchdogSec=`` and s6's and runit's hooks wait for the
program itself to report (``WATCHDOG=1``) or run only around a start. So a
:class:`~procmgmt.readiness.Liveness` declaration is *emulated* the same way
everywhere it is carried: the command the manager runs is prefixed with a
generated *liveness wrapper*, which starts a watcher in the background and
then ``exec``\\ s the program. ``exec`` keeps the wrapper's pid, so the
manager tracks the program as before (signals, pid, exit status) and the
watcher knows whom to watch. The watcher (``sh/liveness_watch.sh``) probes
with the readiness probes of :mod:`procmgmt.backends.shared.ready` every
``period`` seconds after ``delay``; after ``failures`` failed probes in a
row it sends SIGKILL to the program, whose restart policy (validation makes
sure there is one) starts it again. Its messages go to the program's stderr,
so ``procmgmt logs`` shows why a process was killed.

Limits, said where the model is documented: the watcher is a child of the
program after the ``exec`` (a program that waits for *any* child could see
it end); ``timeout`` bounds a command probe (``timeout(1)``), while tcp and
http probes give up after :data:`~procmgmt.backends.shared.ready.PROBE_TIMEOUT`
seconds on their own; a stopped program's watcher ends within half a second
(at once where the manager signals the process group or cgroup).

The same text serves as a file in the store (``bin/<name>-liveness``, run
by path) and as ``sh -c`` text (the init scripts, which are single files).
"""

from __future__ import annotations

import math
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends._shell import quote, shell_file
from procmgmt.backends.shared import ready
from procmgmt.model.spec import ProcessSpec

_WATCH = shell_file("procmgmt.backends.shared", "sh/liveness_watch.sh")


def liveness_file(name: str) -> str:
    """Where a process's liveness wrapper lives, relative to its store entry."""
    return f"bin/{name}-liveness"


def _ms(seconds: float) -> int:
    return max(0, math.ceil(float(seconds) * 1000))


def of(value: Any) -> rd.Liveness | None:
    """A native model's liveness entry (a Liveness, its JSON, or None) as a Liveness."""
    if value is None or isinstance(value, rd.Liveness):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"liveness must be None or a liveness declaration, got {value!r}")
    return rd.Liveness.from_json(value)


def probed(live: rd.Liveness) -> rd.Readiness:
    """The check one liveness probe runs: a command's own bound is the liveness
    ``timeout``, not the readiness one."""
    check = live.check
    if isinstance(check, rd.Command):
        return rd.Command(command=check.command, environment=check.environment,
                          timeout=live.timeout)
    return check


def timing(live: rd.Liveness) -> tuple[int, int, int, int]:
    """(period, timeout, failures, delay) in the whole seconds of the managers that
    probe liveness natively (Kubernetes' livenessProbe, process-compose's
    liveness_probe): rounded up, period and timeout at least 1 s."""
    return (max(1, math.ceil(live.period)), max(1, math.ceil(live.timeout)),
            int(live.failures), math.ceil(live.delay))


def native_problems(spec: ProcessSpec) -> list[tuple[str, str, str]]:
    """What a native liveness probe cannot check: a PidFile without a path names
    the process's own pid file, which nothing writes for a program the manager
    runs in the foreground; plus what the exec probe's sh cannot express."""
    live = spec.liveness
    if not isinstance(live, rd.Liveness):
        return []
    rows = spec_problems(spec)
    if isinstance(live.check, rd.PidFile) and not live.check.path:
        rows.append((spec.name, "liveness.check", "PidFile() names the process's own pid "
                     "file, which nothing writes here: give it a path"))
    return rows


def spec_problems(spec: ProcessSpec) -> list[tuple[str, str, str]]:
    """Backend ``validate`` rows for what the sh probes cannot check in ``spec``'s
    liveness declaration (a regex, a NUL character, an empty command)."""
    live = spec.liveness
    if not isinstance(live, rd.Liveness):
        return []
    return [(spec.name, f"liveness.check.{field.removeprefix('readiness.')}"
             if field != "readiness" else "liveness.check", message)
            for field, message in ready.problems(live.check)]


def _directive(call: str) -> list[str]:
    """A shellcheck directive for the watch line: quoted ``$`` and backquotes are
    literal on purpose (SC2016), and so is a backslash before a quote (SC1003)."""
    codes = [*(["SC1003"] if "\\" in call else []),
             *(["SC2016"] if any(c in call for c in "$`") else [])]
    return [f"# shellcheck disable={','.join(codes)}"] if codes else []


def wrapper(name: str, live: rd.Liveness, *, pid_file: str | None) -> str:
    """The wrapper's text: ``<wrapper> COMMAND [ARG...]`` starts the watcher, then
    execs COMMAND. Usable as a file and as ``sh -c <text> NAME COMMAND...``."""
    check = probed(live)
    call = ready.check_call(check, pid_file=pid_file)
    what = " ".join(live.describe().split())
    probe = " ".join(check.describe().split())
    lines = [
        "#!/bin/sh",
        f"# Liveness watcher of {' '.join(name.split())} (generated by procmgmt): {what}.",
        "# Usage: <this script> COMMAND [ARG...]: starts the watcher, then execs COMMAND,",
        "# which keeps this pid: the watcher watches the program the manager runs.",
        "",
        ready.library([check]).rstrip("\n"),
        "",
        _WATCH.strip("\n"),
        "",
        *_directive(call),
        f"procmgmt_live_watch \"$$\" {quote(name)} {quote(probe)} {_ms(live.delay)} "
        f"{_ms(live.period)} {int(live.failures)} {call} </dev/null &",
        'exec "$@"',
        "",
    ]
    return "\n".join(lines)
