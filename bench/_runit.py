"""runsvdir as a peer: N hand-written service dirs, up read from each ``supervise/status``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

from bench import _util as u

#: runsv's status file: 20 bytes; the pid (little-endian) at 12-15, the state at 19 (1 = run).
STATUS_PID = slice(12, 16)
STATE_RUN = 1
#: runsvdir 2.1.2 supervises at most this many service directories (``MAXSERVICES``).
MAX_SERVICES = 1000


def available() -> bool:
    """runsvdir, runsv and svlogd are installed."""
    return all(shutil.which(c) for c in ("runsvdir", "runsv", "svlogd"))


class Runit:
    """One runsvdir over a scan dir of ``run`` scripts (``#!/bin/sh`` + ``exec ...``);
    with ``log_root``, each also has ``log/run`` (svlogd into ``<log_root>/<name>``,
    stderr joined to stdout), the same work as procmgmt's generated service dirs."""

    def __init__(self, root: str, tag: str, runs: dict[str, str],
                 log_root: str | None = None) -> None:
        if len(runs) > MAX_SERVICES:
            raise ValueError(f"runsvdir supervises at most {MAX_SERVICES} services")
        self.scan = u.write_scan_dir(root, runs, log_root, "svlogd")
        self.tag = tag
        self.names = list(runs)
        # runsvdir waits a second before reading a directory changed within the
        # current second; dated back (as procmgmt's activator does), its first
        # look comes at once, so neither side pays that wait.
        past = time.time() - 2
        os.utime(self.scan, (past, past))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch runsvdir (``-P``: each runsv in a session of its own, as procmgmt's)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), u.TAG_VAR: self.tag}
        self.proc = subprocess.Popen(["runsvdir", "-P", self.scan], env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)

    def up_count(self) -> int:
        """Services whose ``supervise/status`` says run with a pid."""
        up = 0
        for name in self.names:
            try:
                with open(os.path.join(self.scan, name, "supervise", "status"), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if len(data) == 20 and data[19] == STATE_RUN \
                    and int.from_bytes(data[STATUS_PID], "little"):
                up += 1
        return up

    def wait_up(self, timeout: float, interval: float = 0.01) -> float:
        """Poll until every service is up; the monotonic time it held."""
        return u.wait_until(lambda: self.up_count() == len(self.names), timeout, interval,
                            what=f"{len(self.names)} runit services up")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGHUP to runsvdir: it sends every runsv a TERM (each stops its service and
        its logger, then exits) and exits itself."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        self.proc.wait(timeout)

    def kill(self) -> None:
        """Cleanup after a failure."""
        u.kill_manager(self.proc, self.tag)
