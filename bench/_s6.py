"""s6-svscan as a peer: N service dirs, ``-c`` big enough, up read from ``supervise/status``."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from bench import _util as u

#: s6-supervise's status file: 35 bytes; the pid (big-endian, 8 bytes) at offset 24.
STATUS_PID = slice(24, 32)


def available() -> bool:
    """s6-svscan and s6-svscanctl are installed."""
    return all(shutil.which(c) for c in ("s6-svscan", "s6-svscanctl"))


class S6:
    """One s6-svscan over a scan dir of ``run`` scripts (``#!/bin/sh`` + ``exec ...``).

    With ``log_root``, each service dir also has the logger a person would write
    for it (``log/run``: ``s6-log`` into ``<log_root>/<name>``, the rotation
    procmgmt uses by default) and ``run`` sends stderr there too: the same work
    as procmgmt's generated service dirs, which always log.
    """

    def __init__(self, root: str, tag: str, runs: dict[str, str],
                 log_root: str | None = None) -> None:
        self.scan = u.write_scan_dir(root, runs, log_root, "s6-log -b -- n10 s1000000")
        self.tag = tag
        self.names = list(runs)
        self.logged = log_root is not None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch s6-svscan (``-c`` twice the supervisors: the default handles 500)."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), u.TAG_VAR: self.tag}
        supervisors = len(self.names) * (2 if self.logged else 1)
        self.proc = subprocess.Popen(["s6-svscan", "-c", str(max(64, 2 * supervisors)),
                                      self.scan], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def up_count(self) -> int:
        """Services whose supervise/status names a live pid."""
        up = 0
        for name in self.names:
            try:
                with open(os.path.join(self.scan, name, "supervise", "status"), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if len(data) >= 32 and int.from_bytes(data[STATUS_PID], "big"):
                up += 1
        return up

    def wait_up(self, timeout: float, interval: float = 0.01) -> float:
        """Poll until every service is up; the monotonic time it held."""
        return u.wait_until(lambda: self.up_count() == len(self.names), timeout, interval,
                            what=f"{len(self.names)} s6 services up")

    def stop(self, timeout: float = 30.0) -> None:
        """``s6-svscanctl -t`` and wait for s6-svscan itself to exit."""
        subprocess.run(["s6-svscanctl", "-t", self.scan], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert self.proc is not None
        self.proc.wait(timeout)

    def kill(self) -> None:
        """Cleanup after a failure."""
        u.kill_manager(self.proc, self.tag)


def now() -> float:
    """The clock every benchmark uses."""
    return time.monotonic()
