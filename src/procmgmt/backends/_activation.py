"""Activation plumbing shared by the backends' activators.

Running a command and capturing its output, reading a pid file and telling
whether a pid is a live process, and the status of a process judged from its
pid file. Several activators need exactly these; keeping one copy means a fix
(a zombie check, a daemon that holds stdout open) reaches all of them.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from procmgmt import fsutil
from procmgmt.backends.base import ProcessStatus
from procmgmt.manifest import DeployedProcess
from procmgmt.pids import (
    ABSENT,
    Verdict,
    expected_uid,
    pid_alive,
    read_pid_file,
    report,
    trusted_pid,
)
from procmgmt.settings import Settings
from procmgmt.validate import deployment_id

#: Seconds one activation command may run before it counts as failed (124).
COMMAND_TIMEOUT = 120.0
#: Exit status of a command that :func:`subprocess_runner` ended after its timeout.
TIMED_OUT = 124
#: Lines of a failed command's output quoted in the error.
ERROR_TAIL_LINES = 20


@dataclass(frozen=True)
class CommandResult:
    """Exit status and combined output of one command."""

    returncode: int
    output: str = ""


#: Runs one command (an argument vector) and returns its result: the single
#: place where an activator executes anything, so tests can record the plan.
Runner = Callable[[Sequence[str]], CommandResult]


def subprocess_runner(argv: Sequence[str], env: Mapping[str, str] | None = None,
                      timeout: float = COMMAND_TIMEOUT) -> CommandResult:
    """Run ``argv`` (with ``env``, default ours); output goes to a file, not a
    pipe, so a daemon that keeps the script's stdout open cannot make us wait.
    A command still running after ``timeout`` seconds ends with status 124
    (as with timeout(1)); one that cannot be executed with 127 (as in sh)."""
    with _output_file() as out:
        try:
            proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                    env=None if env is None else dict(env),
                                    stderr=subprocess.STDOUT, umask=fsutil.SERVICE_UMASK)
        except OSError as exc:
            return CommandResult(127, str(exc))
        try:
            rc = wait_exit(proc, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = TIMED_OUT
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        return CommandResult(rc, out.read().decode(errors="replace"))


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """``proc.wait(timeout)``, woken by the exit itself where Linux offers a pidfd.

    ``Popen.wait`` with a timeout polls ``waitpid(WNOHANG)``, sleeping up to
    50 ms in between (doubling from 0.5 ms): a script done in 3 ms was seen
    after 3.5 ms, one done in 8 ms after 15.5 ms, and a thousand starts in a
    pool of threads paid that latency each (mean 19 ms per start script at
    load). A pidfd becomes readable when the process exits: one ``poll`` waits
    exactly that long. Elsewhere (BSD, macOS, old kernels), ``Popen.wait``."""
    pidfd_open = getattr(os, "pidfd_open", None)
    try:
        fd = pidfd_open(proc.pid) if pidfd_open is not None else None
    except OSError:  # ENOSYS (before Linux 5.3), or seccomp refuses it
        fd = None
    if fd is None:
        return proc.wait(timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


def _output_file() -> IO[bytes]:
    """An anonymous file for a command's output: in memory (``memfd``) on Linux,
    so running a thousand commands creates no thousand files in the tmp dir."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None:
        try:
            return open(memfd_create("procmgmt-command", getattr(os, "MFD_CLOEXEC", 1)), "w+b")
        except OSError:
            pass
    return tempfile.TemporaryFile(mode="w+b")


def tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    """The last ``lines`` lines of a command's output, for an error message."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def pid_verdict(proc: DeployedProcess, settings: Settings, *,
                whole_line: bool = False) -> Verdict:
    """:func:`procmgmt.pids.trusted_pid` on ``proc``'s pid file (the build-time
    one, else the deployed one), for its user in this deployment; a refused
    pid is reported on stderr. Every activator that signals or reports a pid
    from a pid file asks this. ``whole_line`` as for :func:`read_pid_file`."""
    pid_file = str(proc.extra.get("pid_file") or proc.pid_file or "")
    if not pid_file:
        return Verdict("", None, ABSENT, "no pid file")
    return report(trusted_pid(pid_file, expected_uid(proc.user), deployment_id(settings),
                              whole_line=whole_line, process=proc.name))


def pid_file_status(proc: DeployedProcess, settings: Settings, *,
                    whole_line: bool = False) -> ProcessStatus:
    """Running when the pid file names a trusted live process (:func:`pid_verdict`):
    read here, no command run, so ``status`` of many processes forks nothing."""
    verdict = pid_verdict(proc, settings, whole_line=whole_line)
    if not verdict.trusted:
        return ProcessStatus(proc.name, False, detail=verdict.detail)
    return ProcessStatus(proc.name, True, verdict.pid)


__all__ = [
    "COMMAND_TIMEOUT",
    "ERROR_TAIL_LINES",
    "TIMED_OUT",
    "CommandResult",
    "Runner",
    "pid_alive",
    "pid_file_status",
    "pid_verdict",
    "read_pid_file",
    "subprocess_runner",
    "tail",
    "wait_exit",
]
