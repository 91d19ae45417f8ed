"""procmgmt's own runsvdir of a profile: how it is started, found and stopped.

One runsvdir per (state dir, profile) watches ``<procmgmt dir>/runit/<profile>/scan``.
It is started on demand, in a session of its own, with a small fixed
environment (services must not depend on whichever shell deployed first),
its stderr (and that of every runsv) appended to ``<log dir>/runsvdir-<profile>.log``.
Finding it again uses the process table (its command line names the scan
directory) and a pid file; a start lock keeps two procmgmt commands from
starting two (each would start every service again).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import time

from procmgmt import fsutil
from procmgmt.errors import DeployError
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.pids import pid_alive


def environment() -> dict[str, str]:
    """What runsvdir (and so every run script) inherits."""
    keep = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = SYSTEM_PATH
    return env


def _argv_of(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[:-1]
    except OSError:
        return None


def find_running(pid_file: str, scan: str) -> list[int]:
    """PIDs of the runsvdir processes watching ``scan``."""
    target = os.fsencode(scan)
    found: set[int] = set()
    candidates: list[int] = []
    with contextlib.suppress(OSError, ValueError), open(pid_file, encoding="ascii") as f:
        candidates.append(int(f.read().strip()))
    with contextlib.suppress(OSError):
        candidates += [int(e) for e in os.listdir("/proc") if e.isdigit()]
    for pid in candidates:
        argv = _argv_of(pid)
        if argv and os.path.basename(argv[0]) == b"runsvdir" and argv[-1] == target \
                and pid_alive(pid):
            found.add(pid)
    return sorted(found)


def start(scan: str, pid_file: str, log_file: str) -> int:
    """Start runsvdir on ``scan`` (``-P``: every runsv in a session of its own)."""
    fd = fsutil.open_file(log_file, fsutil.LOG, os.O_WRONLY | os.O_APPEND)
    try:
        proc = subprocess.Popen(["runsvdir", "-P", scan], stdin=subprocess.DEVNULL,
                                stdout=fd, stderr=fd, env=environment(),
                                start_new_session=True, cwd="/", umask=fsutil.SERVICE_UMASK)
    finally:
        os.close(fd)
    # Not waited for: it outlives this command (runsvdir never daemonizes itself).
    proc.returncode = 0
    fsutil.write_atomic(pid_file, f"{proc.pid}\n", fsutil.FILE)
    return proc.pid


def supervised(directory: str) -> bool:
    """True when a runsv supervises ``directory`` (it holds ``supervise/ok`` open
    for reading: opening it for writing without blocking then succeeds)."""
    try:
        fd = os.open(os.path.join(directory, "supervise", "ok"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise
    os.close(fd)
    return True


def stop(pids: list[int], timeout: float = 15.0) -> None:
    """End runsvdir (SIGTERM: it exits at once; the caller made its runsv exit first)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        if time.monotonic() > deadline:
            raise DeployError(f"runsvdir (pid {' '.join(map(str, pids))}) did not exit "
                              f"within {timeout:g} s")
        time.sleep(0.02)
