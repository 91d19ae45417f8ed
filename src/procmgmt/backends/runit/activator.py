"""The runit activator: deploys generations into a runsvdir per profile.

Layout: ``<procmgmt dir>/runit/<profile>/scan/`` is runsvdir's scan
directory. Each deployed process is a *live* service directory
``scan/<name>@<hash>`` whose files are symlinks into the process's store
entry and whose ``supervise/`` (and ``log/supervise/``) runsv creates.
Naming it by the content hash lets a changed process get a new directory (and
a new runsv) while the old one still runs until the engine stops it.

A live directory is built under a dot name (runsvdir skips those), with a
``down`` file, and renamed into place: runsvdir never sees it half made, and
runsv supervises it without starting it. procmgmt then starts services in
dependency order with ``sv -w SECS start`` (which also waits for ``./check``)
and removes ``down``, so a restarted runsvdir (a reboot) starts the service
itself; its ``run`` script waits for the dependencies then.

runsvdir looks at its scan directory every five seconds and notices a
change only through the directory's mtime (or inode); a change
within the second of its last look is seen at the next look (measured
here: a new directory was picked up after about 5 s). :meth:`RunitActivator.prepare`
therefore adds all of a generation's new directories at once and waits for
their runsv (``supervise/ok`` opened), touching the scan directory again if
a look was missed; a first deployment adds them before runsvdir starts.

Removing a directory: rename it to a dot name (runsvdir forgets it) and
``sv exit`` it (runsv exits once the service is down), then delete it.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import time
from collections.abc import Callable

from procmgmt import fsutil
from procmgmt.backends.base import Activator, ProcessStatus, Tool
from procmgmt.backends.runit import runsvdir, service
from procmgmt.backends.shared.startlock import start_lock
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: svlogd's directory of a process.
LOG_DIR = 0o750

#: supervise/status byte 19: what runsv is doing.
_STATES = {0: "down", 1: "run", 2: "finish"}


class RunitActivator(Activator):
    """Starts one runsvdir per (state dir, profile) and drives it with ``sv``."""

    #: Seconds ``sv -w`` waits for a start (and ``./check``) or a stop.
    start_timeout = 30
    stop_timeout = 10
    #: Seconds to wait for runsvdir to supervise new directories.
    pickup_timeout = 20.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.dir = os.path.join(settings.procmgmt_dir, "runit", settings.profile)
        self.scan = os.path.join(self.dir, "scan")
        tag = f"runsvdir-{settings.profile}"
        self.pid_file = os.path.join(settings.runtime_dir, f"{tag}.pid")
        self.log_file = os.path.join(settings.log_dir, f"{tag}.log")

    def required_tools(self, gen: Generation) -> list[Tool]:
        """runit's programs (Debian package ``runit``, without its recommends)."""
        hint = "install runit: apt-get install --no-install-recommends runit"
        return [Tool(t, t, hint) for t in ("runsvdir", "runsv", "sv", "chpst", "svlogd")]

    # -- live service directories -----------------------------------------------------

    def entry(self, proc: DeployedProcess) -> str:
        """The live service directory of ``proc``."""
        return os.path.join(self.scan, f"{proc.name}@{proc.hash[:16]}")

    def _build(self, proc: DeployedProcess) -> str | None:
        """Create ``proc``'s live directory (down) unless it exists; its path if new."""
        live = self.entry(proc)
        if os.path.isdir(live):
            return None
        tmp = os.path.join(self.scan, "." + os.path.basename(live) + ".new")
        shutil.rmtree(tmp, ignore_errors=True)
        source = os.path.join(proc.path, str(proc.extra.get("service", service.SERVICE_DIR)))
        fsutil.ensure_dir(tmp, enforce=True)
        fsutil.ensure_dir(os.path.join(tmp, "log"), enforce=True)
        fsutil.ensure_dir(os.path.join(tmp, "control"), enforce=True)
        for name in service.LINKED:
            target = os.path.join(source, name)
            if os.path.exists(target):
                os.symlink(target, os.path.join(tmp, name))
        # svlogd (root, umask 022) writes current 0644: the directory keeps others out,
        # as the 0640 log files of the other backends do.
        fsutil.ensure_dir(str(proc.extra.get("log_dir")), LOG_DIR, enforce=True)
        # runsv supervises it without starting it; start() removes it.
        fsutil.write_atomic(os.path.join(tmp, "down"), "", fsutil.FILE)
        os.rename(tmp, live)
        return live

    def _remove(self, live: str) -> None:
        """Make runsvdir forget ``live``, let its runsv exit, delete it."""
        gone = os.path.join(self.scan, "." + os.path.basename(live) + ".gone")
        shutil.rmtree(gone, ignore_errors=True)
        os.rename(live, gone)
        self._sv("exit", gone, check=False)
        deadline = time.monotonic() + self.pickup_timeout
        while runsvdir.supervised(gone) or runsvdir.supervised(os.path.join(gone, "log")):
            if time.monotonic() > deadline:
                raise DeployError(f"runsv of {gone} did not exit")
            time.sleep(0.02)
        shutil.rmtree(gone)

    def _wait_supervised(self, lives: list[str]) -> None:
        """Wait until runsvdir runs a runsv for each of ``lives`` (and its log)."""
        pending = [d for live in lives for d in (live, os.path.join(live, "log"))]
        start = time.monotonic()
        touched = False
        while pending:
            pending = [d for d in pending if not runsvdir.supervised(d)]
            if not pending:
                return
            waited = time.monotonic() - start
            if waited > 6 and not touched:
                # runsvdir missed the change (same second as its look): show it again.
                os.utime(self.scan)
                touched = True
            if waited > self.pickup_timeout:
                raise DeployError(f"runsvdir ({self.scan}) did not pick up "
                                  f"{', '.join(pending)} within {self.pickup_timeout:g} s; "
                                  f"see {self.log_file}")
            time.sleep(0.05)

    def _sv(self, command: str, live: str, *, check: bool = True,
            wait: int | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["sv", *(["-w", str(wait)] if wait else []), command, live]
        result = subprocess.run(argv, capture_output=True, text=True, check=False,
                                env=runsvdir.environment())
        if check and result.returncode != 0:
            raise DeployError(f"{' '.join(argv)} failed: "
                              f"{(result.stdout + result.stderr).strip()}")
        return result

    # -- Activator -----------------------------------------------------------

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Add ``new``'s service directories (down) and make sure runsvdir runs and
        supervises them; running services are untouched."""
        for d in (self.settings.runtime_dir, self.settings.log_dir):
            fsutil.ensure_dir(d)
        with start_lock(self.dir, enforce=True):
            fsutil.ensure_dir(self.scan, enforce=True)
            added = [live for proc in new.processes if (live := self._build(proc))]
            if not runsvdir.find_running(self.pid_file, self.scan) and (
                    new.processes or os.listdir(self.scan)):
                os.close(fsutil.open_file(self.log_file, fsutil.LOG,
                                          os.O_WRONLY | os.O_APPEND))
                runsvdir.start(self.scan, self.pid_file, self.log_file)
                added = [self.entry(p) for p in new.processes]
        self._wait_supervised(added)

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool]:
        """Run ``sv -w SECS start`` (up, and ``./check`` passing) in the background and
        return a probe: True once it succeeded (then the ``down`` file goes), raising
        when it failed or when the service ran and went down again (a crash: runsv
        would restart it every second, and sv would wait out its whole timeout)."""
        live = self.entry(proc)
        if not os.path.isdir(live):
            with start_lock(self.dir, enforce=True):
                built = self._build(proc)
            self._wait_supervised([built] if built else [])
        argv = ["sv", "-w", str(self.start_timeout), "start", live]
        waiter = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, env=runsvdir.environment())
        seen_running: list[bool] = []

        def failed(reason: str) -> DeployError:
            tail = self.diagnose(gen, proc)
            return DeployError(f"runit service {proc.name} failed to start: {reason}"
                               + (f"\n  {tail}" if tail else ""))

        def probe() -> bool:
            state, _ = self._state(live)
            if state == "run":
                seen_running.append(True)
            elif seen_running and waiter.poll() is None:
                waiter.kill()
                waiter.communicate()
                raise failed(f"it exited right after starting ({state})")
            if waiter.poll() is None:
                return False
            output, _ = waiter.communicate()
            if waiter.returncode != 0:
                raise failed(output.strip())
            if not proc.extra.get("down"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(live, "down"))
            return True

        return probe

    def _state(self, live: str) -> tuple[str, int | None]:
        """(runsv's state: down, run or finish, the pid) from ``supervise/status``;
        ("unsupervised", None) without one."""
        try:
            with open(os.path.join(live, "supervise", "status"), "rb") as f:
                record = f.read()
        except OSError:
            return "unsupervised", None
        if len(record) < 20:
            return "unsupervised", None
        return _STATES.get(record[19], "unknown"), int.from_bytes(record[12:16], "little") or None

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``sv -w SECS force-stop`` (``control/d`` sends the stop signal to the
        process group; SIGKILL after the timeout); a ``down`` file keeps it down."""
        live = self.entry(proc)
        if not os.path.isdir(live):
            return
        fsutil.write_atomic(os.path.join(live, "down"), "", fsutil.FILE)
        if not runsvdir.supervised(live):
            return
        own = proc.extra.get("stop_timeout")
        wait = self.stop_timeout if own is None else max(1, math.ceil(float(own)))
        result = self._sv("force-stop", live, check=False, wait=wait)
        if self.status(gen, proc).running:
            raise DeployError(f"runit service {proc.name} did not stop: "
                              f"{(result.stdout + result.stderr).strip()}")

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """From ``supervise/status`` (runsv's binary record: pid, wanted, state)."""
        live = self.entry(proc)
        state, pid = self._state(live)
        if state == "unsupervised" or not runsvdir.supervised(live):
            return ProcessStatus(proc.name, False, detail="not supervised by runsvdir")
        running = state == "run" and pid is not None
        return ProcessStatus(proc.name, running, pid if running else None, state)

    def finish(self, new: Generation, old: Generation | None) -> None:
        """Remove the service directories ``new`` does not have (stopped by now);
        with nothing left, stop runsvdir."""
        keep = {os.path.basename(self.entry(p)) for p in new.processes}
        if not os.path.isdir(self.scan):
            return
        for entry in sorted(os.listdir(self.scan)):
            path = os.path.join(self.scan, entry)
            if entry.startswith("."):
                self._remove_hidden(path)
            elif entry not in keep:
                self._remove(path)
        if not new.processes:
            runsvdir.stop(runsvdir.find_running(self.pid_file, self.scan))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pid_file)

    def _remove_hidden(self, path: str) -> None:
        """A dot entry left by an interrupted removal: finish it."""
        self._sv("exit", path, check=False)
        deadline = time.monotonic() + self.pickup_timeout
        while runsvdir.supervised(path):
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        shutil.rmtree(path, ignore_errors=True)
