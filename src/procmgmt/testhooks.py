"""Fault-injection hooks for the fault tests: crash or fail a switch at a named point.

Both are read from the environment of a procmgmt process and do nothing when
unset, so production runs never pay more than one dictionary lookup per point.
They exist because the promises of docs/guarantees.md are about what happens
when something breaks *at a given moment*, and a real fault (a full disk in
the middle of a store write, a manager refusing a reload) cannot be timed from
outside the process.

- ``PROCMGMT_CRASH_AT=<point>``: SIGKILL procmgmt at that checkpoint (no
  cleanup at all, as a power cut or the OOM killer would).
- ``PROCMGMT_FAIL_AT=<point>``: raise an ``OSError`` (EIO) the first time that
  point is reached, as a failing disk, manager or script would (once: the undo
  that follows passes the same points and must succeed, as after a transient
  fault); the switch must undo what it did.
"""

from __future__ import annotations

import errno
import os

#: Crash points: locked, journaled, prepared, stopping, stopped, starting,
#: started, activated, registered, done.
CRASH_ENV = "PROCMGMT_CRASH_AT"

#: Failure points: build (store write), accounts (account creation), files (pid
#: dirs and logs, after the accounts and before the journal), prepare
#: (the backend's setup), reload (the manager reads the program files), stop,
#: start, ready (a readiness check), finish, register (recording the generation).
FAIL_ENV = "PROCMGMT_FAIL_AT"
FAIL_POINTS = ("build", "accounts", "files", "prepare", "reload", "stop", "start", "ready",
               "finish", "register")


def checkpoint(point: str) -> None:
    """Die here (SIGKILL, no cleanup at all) when the crash hook names ``point``."""
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), 9)


_failed: set[str] = set()


def fail_point(point: str) -> None:
    """Raise an I/O error here when the failure hook names ``point`` (once per process)."""
    if os.environ.get(FAIL_ENV) == point and point not in _failed:
        _failed.add(point)
        raise OSError(errno.EIO, f"injected failure ({FAIL_ENV}={point})")
