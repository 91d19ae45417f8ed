"""The s6 activator: installs service directories into procmgmt's s6-svscan and drives them.

Layout: ``<procmgmt_dir>/s6/<profile>/scan/<name>/`` is the service
directory of a deployed process: a copy of the store entry's ``s6/<name>``
(s6-supervise writes ``supervise/`` and ``event/`` into it, so it cannot be
the read-only store entry), built in ``.build/`` beside the scan dir and
renamed into it, so s6-svscan never sees half a directory. It carries a
``down`` file: s6-svscan supervises it but starts nothing until ``s6-svc -u``.

Starting installs the directory, makes s6-svscan scan (``s6-svscanctl -a``),
waits until its s6-supervise listens and sends ``-u``; stopping sends ``-d``,
waits with ``s6-svwait -D``, then takes the directory out of the scan dir and
lets its supervisors exit (``s6-svc -x``), so a stopped process leaves
nothing running. Status reads ``s6-svstat``. An empty generation shuts the
s6-svscan down.

Root safety: the scan dir and every service directory are the deployer's,
mode 0755, never writable by anyone else (docs/security.md); s6-supervise
creates ``supervise/`` with mode 0700 itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

from procmgmt import fsutil
from procmgmt.backends.base import Activator, LogSource, ProcessStatus, Tool
from procmgmt.backends.s6 import svscan
from procmgmt.backends.shared.startlock import start_lock
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: The s6 programs a deployment runs.
TOOLS = ("s6-svscan", "s6-svscanctl", "s6-svc", "s6-svwait", "s6-svstat", "s6-svok",
         "s6-notifyoncheck", "s6-log")


#: ``s6-svstat`` options whose output :func:`svstat_status` reads.
SVSTAT_OPTIONS = ("-o", "up,ready,pid,wantedup,exitcode,signal")


def svstat_status(proc: DeployedProcess, output: str) -> ProcessStatus:
    """``s6-svstat -o up,ready,pid,wantedup,exitcode,signal``'s output as a status:
    running when up, its pid, readiness in the detail when the process notifies (the
    s6-rc activator reads the same supervisors). Down but wanted up means s6-supervise
    keeps restarting it: the detail says so with the last exit code or signal, so a
    crash-looping process is not shown as merely down."""
    up, is_ready, pid, wanted, code, sig = [*output.split(), "", "", "", "", "", ""][:6]
    running = up == "true"
    detail = "up" if running else "down"
    if running and proc.extra.get("notifies"):
        detail += ", ready" if is_ready == "true" else ", not ready yet"
    if not running and wanted == "true":
        how = (f"exit code {code}" if code.lstrip("-").isdigit() and int(code) >= 0
               else f"signal {sig}" if sig and sig != "NA" else "")
        detail = "restarting: it exits right after starting" + (f" ({how})" if how else "")
    pid_value = int(pid) if pid.isdigit() and int(pid) > 0 else None
    return ProcessStatus(proc.name, running, pid_value if running else None, detail)


class S6Activator(Activator):
    """One s6-svscan per (state dir, profile); one service directory per process."""

    #: Seconds to wait for a service to come up, and to go down.
    start_timeout = 30.0
    stop_timeout = 30.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.dir = os.path.join(settings.procmgmt_dir, "s6", settings.profile)
        self.scan_dir = os.path.join(self.dir, "scan")
        self.build_dir = os.path.join(self.dir, ".build")
        tag = f"s6-svscan-{settings.profile}"
        self.pid_file = os.path.join(settings.runtime_dir, f"{tag}.pid")
        self.log_file = os.path.join(settings.log_dir, f"{tag}.log")

    # -- s6 commands -----------------------------------------------------------

    def _run(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([svscan.tool(argv[0]), *argv[1:]], check=False, text=True,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)

    def service(self, proc: DeployedProcess) -> str:
        """The process's service directory in the scan dir."""
        return os.path.join(self.scan_dir, proc.name)

    def supervised(self, path: str) -> bool:
        """An s6-supervise runs for ``path`` (``s6-svok``)."""
        return self._run("s6-svok", path).returncode == 0

    def svscan_pids(self) -> list[int]:
        """The s6-svscan processes of this profile's scan dir."""
        return svscan.find_running(self.pid_file, self.scan_dir)

    # -- Activator -------------------------------------------------------------

    def required_tools(self, gen: Generation) -> list[Tool]:
        """The s6 programs (Debian packages ``s6`` and ``execline``)."""
        return [Tool(name, svscan.tool(name), "install s6 (apt-get install s6 execline)")
                for name in TOOLS]

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Bring s6-svscan up (under the start lock: never two for a scan dir), with
        ``-c`` sized for the larger of the two generations; one started with a
        smaller ``-c`` is restarted only while it supervises nothing."""
        fsutil.ensure_dir(self.dir, enforce=True)
        fsutil.ensure_dir(self.scan_dir, enforce=True)
        fsutil.ensure_dir(self.build_dir, fsutil.PRIVATE_DIR, enforce=True)
        fsutil.ensure_dir(self.settings.log_dir)
        fsutil.ensure_dir(self.settings.runtime_dir)
        if not new.processes:
            return
        wanted = max(len(new.processes), len(old.processes) if old else 0)
        with start_lock(self.dir):
            if not self.svscan_pids():
                svscan.start(self.scan_dir, self.pid_file, self.log_file, wanted)

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool]:
        """Install the service directory (when it is not there), then ``s6-svc -u``;
        the probe is True once s6-svstat says up."""
        path = self.service(proc)
        if not os.path.isdir(path):
            self._install(proc)
        deadline = time.monotonic() + self.start_timeout
        while not self.supervised(path):
            if time.monotonic() > deadline:
                raise DeployError(f"s6-svscan did not pick up {path} within "
                                  f"{self.start_timeout:g} s (is it running? see {self.log_file})")
            svscan.control(self.scan_dir, "-a")
            time.sleep(0.02)
        # s6-svok answers once the lock is taken; the control FIFO may follow a moment later.
        while (result := self._run("s6-svc", "-u", path)).returncode != 0:
            if time.monotonic() > deadline:
                raise DeployError(f"s6-svc -u {path} failed: {result.stderr.strip()}")
            time.sleep(0.02)

        def probe() -> bool:
            st = self.status(gen, proc)
            if st.running:
                return True
            if time.monotonic() > deadline:
                raise DeployError(f"s6 service {proc.name} is not up after "
                                  f"{self.start_timeout:g} s: {st.detail}")
            return False

        return probe

    def _install(self, proc: DeployedProcess) -> None:
        """Copy the store entry's service directory into ``.build`` and rename it into
        the scan dir (s6-svscan sees all of it or nothing)."""
        source = os.path.join(proc.path, str(proc.extra.get("service_dir") or f"s6/{proc.name}"))
        log_dir = proc.extra.get("log_dir")
        if isinstance(log_dir, str):
            # Created here, not left to s6-log (which runs as root and follows a
            # symlink planted there by another user): a symlink is refused, naming it.
            fsutil.ensure_dir(log_dir, fsutil.PRIVATE_DIR, enforce=True)
        tmp = tempfile.mkdtemp(prefix=f"{proc.name}.", dir=self.build_dir)
        target = os.path.join(tmp, "svc")
        shutil.copytree(source, target, symlinks=True)
        for root, dirs, _files in os.walk(target):
            for d in dirs:
                os.chmod(os.path.join(root, d), fsutil.DIR)
        os.chmod(target, fsutil.DIR)
        os.rename(target, self.service(proc))
        os.rmdir(tmp)
        svscan.control(self.scan_dir, "-an")

    def _stop_wait(self, proc: DeployedProcess) -> float:
        """How long to wait for ``proc`` to go down: :attr:`stop_timeout`, or longer
        when the model gave it a longer ``stop_timeout`` (its timeout-kill)."""
        own = proc.extra.get("stop_timeout")
        return max(self.stop_timeout, float(own) + 5) if own is not None else self.stop_timeout

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``s6-svc -d`` and wait until down, then take the service directory out of
        the scan dir and let its supervisors (service and logger) exit."""
        path = self.service(proc)
        if not os.path.isdir(path):
            return
        if self.supervised(path):
            self._run("s6-svc", "-d", path)
            wait = self._stop_wait(proc)
            result = self._run("s6-svwait", "-D", "-t", str(int(wait * 1000)),
                               path, timeout=wait + 5)
            if result.returncode != 0:
                raise DeployError(f"s6 service {proc.name} did not go down within "
                                  f"{wait:g} s: {result.stderr.strip()}")
        self._remove(path)

    def _remove(self, path: str) -> None:
        """Move ``path`` out of the scan dir, make its supervisors exit, delete it."""
        gone = tempfile.mkdtemp(prefix="removed.", dir=self.build_dir)
        moved = os.path.join(gone, "svc")
        os.rename(path, moved)
        parts = [os.path.join(moved, "log"), moved]
        for part in parts:
            if os.path.isdir(part) and self.supervised(part):
                self._run("s6-svc", "-dx", part)
        deadline = time.monotonic() + self.stop_timeout
        while any(os.path.isdir(p) and self.supervised(p) for p in parts):
            if time.monotonic() > deadline:
                raise DeployError(f"the s6-supervise processes of {path} did not exit")
            time.sleep(0.02)
        svscan.control(self.scan_dir, "-an")
        shutil.rmtree(gone, ignore_errors=True)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """``s6-svstat -o up,ready,pid``: running when up, its pid, readiness in the detail."""
        path = self.service(proc)
        if not os.path.isdir(path):
            return ProcessStatus(proc.name, False, detail="not installed in the scan dir")
        result = self._run("s6-svstat", *SVSTAT_OPTIONS, path)
        if result.returncode != 0:
            return ProcessStatus(proc.name, False, detail=result.stderr.strip()
                                 or "s6-svscan is not running")
        return svstat_status(proc, result.stdout)

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """s6-log's ``current`` file of the process."""
        path = proc.extra.get("log_file")
        return LogSource(files=(str(path),) if isinstance(path, str) else ())

    def finish(self, new: Generation, old: Generation | None) -> None:
        """An empty generation leaves nothing to supervise: stop s6-svscan."""
        if not new.processes:
            self.shutdown()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Take every remaining service out, then ``s6-svscanctl -t`` and wait."""
        if os.path.isdir(self.scan_dir):
            for name in sorted(os.listdir(self.scan_dir)):
                path = os.path.join(self.scan_dir, name)
                if name.startswith(".") or not os.path.isdir(path):
                    continue
                if self.supervised(path):
                    self._run("s6-svc", "-d", path)
                    self._run("s6-svwait", "-D", "-t", str(int(timeout * 1000)), path,
                              timeout=timeout + 5)
                self._remove(path)
        for pid in self.svscan_pids():
            svscan.control(self.scan_dir, "-t")
            svscan.stop_pid(pid, timeout)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_file)
