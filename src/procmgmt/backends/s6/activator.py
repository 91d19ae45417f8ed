"""The s6 activator: installs service directories into procmgmt's s6-svscan and drives them.

Layout: ``<procmgmt_dir>/s6/<profile>/scan/<name>/`` is the service
directory of a deployed process made from the store entry's ``s6/<name>``
(s6-supervise writes ``supervise/`` and ``event/`` into it, so it cannot be
the read-only store entry; its files are symlinks into it), built in
``.build/`` beside the scan dir and renamed into it, so s6-svscan never sees
half a directory. It carries a ``down`` file: s6-svscan supervises it but
starts nothing until ``s6-svc -u``.

``prepare`` installs every new directory of a generation at once (one
s6-svscan rescan per hundred, ``s6-svscanctl -an``); starting sends ``-u``
once an s6-supervise listens on the process's directory (installing
the directory first when it is not there, e.g. a changed process whose old
directory went with its stop); stopping sends ``-d``, waits until the status
record shows no pid (as ``s6-svwait -D`` would), then takes the directory out
of the scan dir and lets its supervisors exit (``s6-svc -x``), so a stopped
process leaves nothing running. Status, the probes and every "is it
supervised" read s6-supervise's files directly, and the commands go into its
control FIFO as ``s6-svc`` writes them (:mod:`.supervise`: no tool run per
process); ``s6-svc``, ``s6-svstat`` and ``s6-svwait`` only where the installed
s6 predates the record decoded there. An empty generation shuts the s6-svscan down.

Root safety: the scan dir and every service directory are the deployer's,
mode 0755, never writable by anyone else (docs/security.md); s6-supervise
creates ``supervise/`` with mode 0700 itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

from procmgmt import fsutil
from procmgmt.backends.base import Activator, LogSource, ProcessStatus, Tool
from procmgmt.backends.s6 import supervise, svscan
from procmgmt.backends.shared.startlock import start_lock
from procmgmt.backends.shared.supervise_dir import Progress
from procmgmt.deploy import handstop
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: The s6 programs a deployment runs.
TOOLS = ("s6-svscan", "s6-svscanctl", "s6-svc", "s6-svwait", "s6-svstat",
         "s6-notifyoncheck", "s6-log")


#: Service directories :meth:`S6Activator.prepare` installs between two rescans.
INSTALL_BATCH = 100
#: Seconds a start waits for its supervisor before it asks s6-svscan for a rescan
#: (again), unless one began that recently.
RESCAN_AGAIN = 0.5

#: ``s6-svstat`` options whose output :func:`svstat_status` reads.
#: Seconds between two ``dx`` to a supervisor of a removed service still running.
RETELL = 0.2
SVSTAT_OPTIONS = ("-o", "up,ready,pid,wantedup,exitcode,signal")


def _status(proc: DeployedProcess, up: bool, ready: bool, pid: int | None,
            wanted_up: bool, code: int | None, sig: str | None) -> ProcessStatus:
    """Running when up, its pid, readiness in the detail when the process notifies.
    Down but wanted up means s6-supervise keeps restarting it: the detail says so
    with the last exit code or signal, so a crash-looping process is not shown as
    merely down."""
    detail = "up" if up else "down"
    if up and proc.extra.get("notifies"):
        detail += ", ready" if ready else ", not ready yet"
    if not up and wanted_up:
        how = (f"exit code {code}" if code is not None else f"signal {sig}" if sig else "")
        detail = "restarting: it exits right after starting" + (f" ({how})" if how else "")
    return ProcessStatus(proc.name, up, pid if up else None, detail)


def record_status(proc: DeployedProcess, record: supervise.SuperviseStatus) -> ProcessStatus:
    """A decoded ``supervise/status`` record as a status (as :func:`svstat_status`
    reads the same record through s6-svstat)."""
    return _status(proc, record.up, record.ready, record.pid or None, record.wanted_up,
                   record.exitcode, record.signal)


def svstat_status(proc: DeployedProcess, output: str) -> ProcessStatus:
    """``s6-svstat -o up,ready,pid,wantedup,exitcode,signal``'s output as a status
    (the s6-rc activator reads the same supervisors this way)."""
    up, is_ready, pid, wanted, code, sig = [*output.split(), "", "", "", "", "", ""][:6]
    exitcode = int(code) if code.lstrip("-").isdigit() and int(code) >= 0 else None
    return _status(proc, up == "true", is_ready == "true",
                   int(pid) if pid.isdigit() and int(pid) > 0 else None, wanted == "true",
                   exitcode, sig if sig and sig != "NA" else None)


def _link_service(source: str, target: str) -> None:
    """``target``, a new directory (0755 whatever the umask) mirroring ``source``: each
    directory a real one (s6-supervise writes ``supervise/`` and ``event/`` into the
    service's and its logger's, ``run`` its log offset into ``data/``: never into
    the store entry), each file a symlink to the store's, and ``down`` a real file
    where ``source`` has one."""
    os.mkdir(target)
    os.chmod(target, fsutil.DIR)
    with os.scandir(source) as entries:
        for entry in entries:
            path = os.path.join(target, entry.name)
            if entry.is_dir(follow_symlinks=False):
                _link_service(entry.path, path)
            elif entry.name == "down":  # in a directory just made: nothing to replace
                os.close(fsutil.open_file(path, fsutil.FILE, os.O_WRONLY, exclusive=True))
            else:
                os.symlink(entry.path, path)


class S6Activator(Activator):
    """One s6-svscan per (state dir, profile); one service directory per process."""

    #: Each call works on its own service directory (installed through a private
    #: temporary directory, taken out by a rename) and only asks s6-svscan to
    #: rescan, which it coalesces; s6-svscan is started under the start lock in
    #: ``prepare``. Serialized, 3,000 processes took minutes per switch.
    parallel_safe = True

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
        self._rescan_lock = threading.Lock()
        self._rescan_began = 0.0
        self._progress = Progress()
        #: A directory was taken out since the last rescan (see :meth:`finish`).
        self._removed = False

    # -- s6 commands -----------------------------------------------------------

    def _run(self, *argv: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run([svscan.tool(argv[0]), *argv[1:]], check=False, text=True,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)

    def service(self, proc: DeployedProcess) -> str:
        """The process's service directory in the scan dir."""
        return os.path.join(self.scan_dir, proc.name)

    def _rescan(self, covered: float = 0.0) -> None:
        """``s6-svscanctl -an``: s6-svscan reads the scan dir again (and lets the
        supervisors of directories taken out go). Calls from parallel starts and
        stops share one: a rescan that began after this call covers its change, or
        one begun up to ``covered`` seconds before it (a start's reminder, for a
        directory installed earlier still: a thousand of them, each running
        ``s6-svscanctl``, took more of a first deployment than anything else)."""
        asked = time.monotonic()
        with self._rescan_lock:
            if self._rescan_began >= asked - covered:
                return
            self._rescan_began = time.monotonic()
            svscan.control(self.scan_dir, "-an")

    def svc(self, path: str, commands: str) -> str | None:
        """Send s6-svc's ``commands`` (``u``, ``d``, ``dx``) to the supervisor of
        ``path``: written to its control FIFO (:func:`.supervise.send`), through
        ``s6-svc`` on an s6 older than 2.11; None when sent, else what failed."""
        if supervise.direct_read():
            return None if supervise.send(path, commands) else "s6-supervise not running"
        result = self._run("s6-svc", f"-{commands}", path)
        return None if result.returncode == 0 else result.stderr.strip()

    def supervised(self, path: str) -> bool:
        """An s6-supervise runs for ``path`` and reads its commands."""
        return supervise.supervised(path)

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
        self._install_all(new)
        self._progress.note()

    def _install_all(self, gen: Generation) -> None:
        """Install every missing service directory of ``gen`` (each with its ``down``
        file: supervised, not started), asking s6-svscan to rescan after each batch
        of :data:`INSTALL_BATCH`; each start's probe sends ``-u`` once its own
        directory is supervised, while s6-svscan still spawns the supervisors of
        the others.

        s6-svscan reads the whole scan dir per rescan, so a rescan per process (as
        each start did alone) made a first deployment of N grow as N squared.
        Left out: processes stopped by hand (``procmgmt stop``), which a switch
        keeps down (their start, if any, installs them). A directory whose process
        is then never started (the switch failed first) goes in :meth:`finish`."""
        held = handstop.held(self.settings, gen)
        missing = [p for p in gen.processes
                   if p.name not in held and not os.path.isdir(self.service(p))]
        for i, proc in enumerate(missing, 1):
            self._install(proc, rescan=i % INSTALL_BATCH == 0 or i == len(missing))

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool]:
        """Install the service directory (when :meth:`prepare` did not) and return a
        probe: once an s6-supervise listens on it, ``-u`` goes out; True once
        ``supervise/status`` says up. Non-blocking, so no worker waits while
        s6-svscan spawns the supervisors of a whole generation."""
        path = self.service(proc)
        if not os.path.isdir(path):
            self._install(proc)
        deadline = time.monotonic() + self.start_timeout
        asked = [time.monotonic()]
        sent: list[bool] = []

        def probe() -> bool:
            now = time.monotonic()
            if not sent:
                # Written straight to the FIFO, the send itself says whether a
                # supervisor listens; s6-svc only once one does.
                listens = supervise.direct_read() or self.supervised(path)
                if listens and self.svc(path, "u") is None:
                    sent.append(True)
                    self._progress.note()
                elif self._progress.stalled(deadline, self.start_timeout):
                    raise DeployError(f"s6-svscan did not pick up {path} within "
                                      f"{self.start_timeout:g} s (is it running? see "
                                      f"{self.log_file})")
                else:
                    if now - asked[0] > RESCAN_AGAIN:
                        self._rescan(covered=RESCAN_AGAIN)
                        asked[0] = now
                    return False
            stalled = self._progress.stalled(deadline, self.start_timeout)
            if supervise.direct_read() and not stalled:
                # The record alone: status() would read it again, and run s6-svstat
                # (a fork and exec) while s6-supervise has not written one yet.
                record = supervise.read_status(path)
                if record is not None and record.up:
                    self._progress.note()
                    return True
                return False
            st = self.status(gen, proc)
            if st.running:
                self._progress.note()
                return True
            if stalled:
                raise DeployError(f"s6 service {proc.name} is not up after "
                                  f"{self.start_timeout:g} s: {st.detail}")
            return False

        return probe

    def _install(self, proc: DeployedProcess, *, rescan: bool = True) -> str:
        """Make the store entry's service directory in ``.build`` and rename it into
        the scan dir (s6-svscan sees all of it or nothing); its path there. With
        ``rescan``, ask s6-svscan to look at once.

        Directories are real (s6-supervise and ``run`` write into them), every
        file a symlink into the store entry, which nobody else can write (a copy
        of every file cost 1 ms per service, most of a first deployment's
        preparation), and ``down`` a file of its own (:func:`_link_service`)."""
        source = os.path.join(proc.path, str(proc.extra.get("service_dir") or f"s6/{proc.name}"))
        log_dir = proc.extra.get("log_dir")
        if isinstance(log_dir, str):
            # Created here, not left to s6-log (which runs as root and follows a
            # symlink planted there by another user): a symlink is refused, naming it.
            fsutil.ensure_dir(log_dir, fsutil.PRIVATE_DIR, enforce=True)
        tmp = tempfile.mkdtemp(prefix=f"{proc.name}.", dir=self.build_dir)
        target = os.path.join(tmp, "svc")
        try:
            _link_service(source, target)
            os.rename(target, self.service(proc))
        finally:  # a half-made directory (a full disk) is not left in .build
            shutil.rmtree(tmp, ignore_errors=True)
        if rescan:
            self._rescan()
        return self.service(proc)

    def _stop_wait(self, proc: DeployedProcess) -> float:
        """How long to wait for ``proc`` to go down: :attr:`stop_timeout`, or longer
        when the model gave it a longer ``stop_timeout`` (its timeout-kill)."""
        own = proc.extra.get("stop_timeout")
        return max(self.stop_timeout, float(own) + 5) if own is not None else self.stop_timeout

    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """``-d``, then a probe: once down, the service directory goes out of the scan
        dir and its supervisors (service and logger) are told to exit; True once
        they have and the directory is deleted. Non-blocking, so the stops of a
        whole generation are under way at once (as s6-svscanctl -t would bring
        them down) instead of a worker's share at a time. Blocking, through
        ``s6-svwait``, where the record is not read directly (s6 older than 2.11)."""
        path = self.service(proc)
        if not os.path.isdir(path):
            return None
        wait = self._stop_wait(proc)
        if not supervise.direct_read():
            self._take_out(path, wait, proc.name)
            return None
        if self.supervised(path):
            self.svc(path, "d")
        deadline = time.monotonic() + wait
        moved: list[tuple[str, list[str]]] = []

        def probe() -> bool:
            if not moved:
                if not self._really_down(path):
                    if time.monotonic() > deadline:
                        raise DeployError(f"s6 service {proc.name} did not go down within "
                                          f"{wait:g} s")
                    return False
                moved.append(self._move_out(path))
                told.update(dict.fromkeys(moved[0][1], time.monotonic()))
            gone, parts = moved[0]
            if self._still_supervised(parts, told):
                if time.monotonic() > deadline + self.stop_timeout:
                    raise DeployError(f"the s6-supervise processes of {path} did not exit")
                return False
            shutil.rmtree(gone, ignore_errors=True)
            return True

        told: dict[str, float] = {}
        return probe

    def starts_at_once(self, proc: DeployedProcess) -> bool:
        """:meth:`start` returns its probe at once when :meth:`prepare` installed the
        service directory (it installs one otherwise)."""
        return os.path.isdir(self.service(proc))

    def stops_at_once(self, proc: DeployedProcess) -> bool:
        """:meth:`stop` writes ``d`` to the control FIFO and returns a probe, except on
        an s6 older than 2.11 (it waits through ``s6-svwait`` there)."""
        return supervise.direct_read()

    def _still_supervised(self, parts: list[str], told: dict[str, float]) -> bool:
        """Whether a supervisor of ``parts`` still runs; each one that does is told
        ``dx`` again, at most every :data:`RETELL` s. A supervisor that s6-svscan
        spawned just as the directory was moved out (the logger's, typically)
        had no control FIFO yet when :meth:`_move_out` told the others, and would
        otherwise supervise the moved directory for good."""
        now = time.monotonic()
        running = [p for p in parts if self.supervised(p)]
        for part in running:
            if now - told.get(part, float("-inf")) >= RETELL:
                told[part] = now
                self.svc(part, "dx")
        return bool(running)

    def _really_down(self, path: str) -> bool:
        """Down with ``./finish`` done too (what ``s6-svwait -D`` waits for): no pid in
        the status record, or no supervisor any more."""
        if not self.supervised(path):
            return True
        record = supervise.read_status(path)
        return record is not None and record.pid == 0

    def _wait_down(self, path: str, timeout: float) -> str | None:
        """Wait until the service of ``path`` is really down; what went wrong, or None.
        ``s6-svwait -D`` where the record is not read directly."""
        if not supervise.direct_read():
            result = self._run("s6-svwait", "-D", "-t", str(int(timeout * 1000)), path,
                               timeout=timeout + 5)
            return None if result.returncode == 0 else result.stderr.strip()
        deadline = time.monotonic() + timeout
        while not self._really_down(path):
            if time.monotonic() > deadline:
                return "still up"
            time.sleep(0.01)
        return None

    def _move_out(self, path: str) -> tuple[str, list[str]]:
        """Move ``path`` out of the scan dir and tell its supervisors to exit (``dx``):
        (the directory holding it now, the service and logger directories). s6-svscan
        forgets it at its next rescan (:meth:`finish` asks for one)."""
        gone = tempfile.mkdtemp(prefix="removed.", dir=self.build_dir)
        moved = os.path.join(gone, "svc")
        os.rename(path, moved)
        self._removed = True
        parts = [os.path.join(moved, "log"), moved]
        for part in parts:
            if os.path.isdir(part) and self.supervised(part):
                self.svc(part, "dx")
        return gone, parts

    def _remove(self, path: str) -> None:
        """Move ``path`` out of the scan dir, wait until its supervisors exited, delete it."""
        gone, parts = self._move_out(path)
        deadline = time.monotonic() + self.stop_timeout
        told = dict.fromkeys(parts, time.monotonic())
        while self._still_supervised(parts, told):
            if time.monotonic() > deadline:
                raise DeployError(f"the s6-supervise processes of {path} did not exit")
            time.sleep(0.02)
        shutil.rmtree(gone, ignore_errors=True)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """From s6-supervise's ``supervise/status`` (:mod:`.supervise`): running when
        up, its pid, readiness in the detail; the restarts from its death tally."""
        path = self.service(proc)
        if not os.path.isdir(path):
            return ProcessStatus(proc.name, False, detail="not installed in the scan dir")
        if not supervise.direct_read():
            return self._svstat(proc, path)
        try:
            if not self.supervised(path):
                return ProcessStatus(proc.name, False, detail="s6-supervise is not running "
                                     "(is s6-svscan running?)")
            record = supervise.read_status(path)
        except OSError as exc:
            return ProcessStatus(proc.name, False, detail=f"cannot read the status of {path}: "
                                 f"{exc.strerror or exc}")
        if record is None:
            return self._svstat(proc, path)
        st = record_status(proc, record)
        if not st.running:
            return st
        # s6-supervise's death tally: one record per death since procmgmt installed the
        # service (a stop takes it out), so every one was followed by a restart.
        return dataclasses.replace(st, restarts=supervise.death_count(path))

    def _svstat(self, proc: DeployedProcess, path: str) -> ProcessStatus:
        """The status through ``s6-svstat`` and ``s6-svdt`` (an s6 older than 2.11,
        whose record :mod:`.supervise` does not decode)."""
        result = self._run("s6-svstat", *SVSTAT_OPTIONS, path)
        if result.returncode != 0:
            return ProcessStatus(proc.name, False, detail=result.stderr.strip()
                                 or "s6-svscan is not running")
        st = svstat_status(proc, result.stdout)
        if not st.running:
            return st
        tally = self._run("s6-svdt", path)
        if tally.returncode != 0:
            return st
        return dataclasses.replace(st, restarts=len(tally.stdout.splitlines()))

    def manager_problems(self, gen: Generation) -> list[str]:
        """s6-svscan gone (killed, crashed) while the generation has processes: its
        s6-supervise processes go on, so every process looks fine, but a changed
        service dir or a new one is not picked up until a switch starts it again."""
        if not gen.processes or not os.path.isdir(self.scan_dir) or self.svscan_pids():
            return []
        return [f"s6-svscan of {self.scan_dir} is not running: the processes run on under "
                "their s6-supervise, but nothing new is picked up; the next switch starts "
                "it again (procmgmt switch --switch-generation N, N the current one)"]

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """s6-log's ``current`` file of the process."""
        path = proc.extra.get("log_file")
        return LogSource(files=(str(path),) if isinstance(path, str) else ())

    def finish(self, new: Generation, old: Generation | None) -> None:
        """An empty generation leaves nothing to supervise: stop s6-svscan. Otherwise
        take out what ``new`` does not have: a directory :meth:`prepare` installed
        for a switch that failed before it started the process (the switch back
        to the previous generation ends here)."""
        if not new.processes:
            self.shutdown()
            return
        names = {p.name for p in new.processes}
        if os.path.isdir(self.scan_dir):
            for name in sorted(os.listdir(self.scan_dir)):
                path = os.path.join(self.scan_dir, name)
                if name not in names and not name.startswith(".") and os.path.isdir(path):
                    self._take_out(path, self.stop_timeout)
        if self._removed:
            self._removed = False
            self._rescan()  # s6-svscan forgets the directories taken out

    def _take_out(self, path: str, timeout: float, name: str | None = None) -> None:
        """Bring the service of ``path`` down (waiting at most ``timeout``) and remove
        it; with ``name``, a service that stays up is an error naming it."""
        if self.supervised(path):
            self.svc(path, "d")
            problem = self._wait_down(path, timeout)
            if problem is not None and name is not None:
                raise DeployError(f"s6 service {name} did not go down within "
                                  f"{timeout:g} s: {problem}")
        self._remove(path)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Take every remaining service out, then ``s6-svscanctl -t`` and wait."""
        if os.path.isdir(self.scan_dir):
            for name in sorted(os.listdir(self.scan_dir)):
                path = os.path.join(self.scan_dir, name)
                if not name.startswith(".") and os.path.isdir(path):
                    self._take_out(path, timeout)
        for pid in self.svscan_pids():
            svscan.control(self.scan_dir, "-t")
            svscan.stop_pid(pid, timeout)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_file)
