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
dependency order (``u`` to runsv, or ``sv -w SECS start``, which also waits
for ``./check``, where there is one) and removes ``down``, so a restarted
runsvdir (a reboot) starts the service itself; its ``run`` script waits for
the dependencies then.

runsvdir looks at its scan directory every five seconds and notices a
change only through the directory's mtime (or inode); a change
within the second of its last look is seen at the next look (measured
here: a new directory was picked up after about 5 s). :meth:`RunitActivator.prepare`
therefore adds all of a generation's new directories at once and waits for
their runsv (``supervise/ok`` opened), touching the scan directory again if
a look was missed; a first deployment adds them before runsvdir starts (and
dates the directory back, so that runsvdir's first look comes at once).
runsvdir 2.1.2 has no signal that makes it look now: its only wake-ups are
that timer and its readproctitle log pipe, which would take runsvdir's and
every runsv's stderr away from ``runsvdir-<profile>.log``.

Stopping writes a ``down`` file and sends runsv ``d`` (its ``control/d``
signals the process group), and the stop probe waits until runsv's record
says down (SIGKILL, ``k``, past the timeout): the commands go into
``supervise/control`` as ``sv`` writes them and the record is read directly
(:mod:`.supervise`), no ``sv`` run per process. Removing directories (in
``finish``): rename them to dot names (runsvdir forgets them) and send ``x``
(runsv exits once the service is down), all at once, then delete them.
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
from procmgmt.backends.runit import runsvdir, service, supervise
from procmgmt.backends.shared.startlock import start_lock
from procmgmt.backends.shared.supervise_dir import Progress
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: svlogd's directory of a process.
LOG_DIR = 0o750



def _size(path: str) -> int:
    """The size of ``path``, 0 when it is missing (or no path)."""
    try:
        return os.stat(path).st_size if path else 0
    except OSError:
        return 0


class RunitActivator(Activator):
    """Starts one runsvdir per (state dir, profile) and drives it with ``sv``."""

    #: Every call works on its own service directory (runsv's files, read and written
    #: directly), a directory is built under the start lock, and runsvdir is
    #: started in ``prepare``, which runs alone: as for s6, no call needs another
    #: call's lock.
    parallel_safe = True

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
        self._progress = Progress()

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

    def _remove_all(self, lives: list[str], hidden: list[str]) -> None:
        """Make runsvdir forget ``lives`` (renamed to dot names, which it skips), tell
        their runsv to exit (``x``: runsv exits once the service and its logger
        are down) and delete them, all at once; ``hidden`` are dot entries left
        by an interrupted removal, finished alike (without an error when their
        runsv stays)."""
        gone = []
        for live in lives:
            moved = os.path.join(self.scan, "." + os.path.basename(live) + ".gone")
            shutil.rmtree(moved, ignore_errors=True)
            os.rename(live, moved)
            gone.append(moved)
        for path in gone + hidden:
            supervise.send(path, "x")
        deadline = time.monotonic() + self.pickup_timeout
        waiting = gone + hidden
        while waiting := [p for p in waiting
                          if runsvdir.supervised(p) or runsvdir.supervised(os.path.join(p, "log"))]:
            if time.monotonic() > deadline:
                stuck = [p for p in waiting if p in gone]
                if stuck:
                    raise DeployError(f"runsv of {', '.join(stuck[:5])} did not exit")
                break
            time.sleep(0.02)
        for path in gone + [p for p in hidden if p not in waiting]:
            shutil.rmtree(path, ignore_errors=True)

    def _date_back_scan(self) -> None:
        """Before runsvdir starts: date the scan directory's mtime two seconds back.

        runsvdir waits a second before a look at a directory changed in the current
        second (a change later in that second would leave the mtime as it was). A
        runsvdir that is not running yet has no look to miss, and any change after
        its first look sets the mtime to the present, which differs from this one.
        So the first look, which starts every service of a first deployment, comes
        at once instead of a second later.
        """
        past = time.time() - 2
        os.utime(self.scan, (past, past))

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

    # -- Activator -----------------------------------------------------------

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Add ``new``'s service directories (down) and make sure runsvdir runs and
        supervises them; running services are untouched. A runsvdir started here
        picks them all up at its first look: the starts go out as each runsv
        comes up (their probes wait for it), not after the last one."""
        for d in (self.settings.runtime_dir, self.settings.log_dir):
            fsutil.ensure_dir(d)
        fresh = False
        with start_lock(self.dir, enforce=True):
            fsutil.ensure_dir(self.scan, enforce=True)
            added = [live for proc in new.processes if (live := self._build(proc))]
            if not runsvdir.find_running(self.pid_file, self.scan) and (
                    new.processes or os.listdir(self.scan)):
                os.close(fsutil.open_file(self.log_file, fsutil.LOG,
                                          os.O_WRONLY | os.O_APPEND))
                self._date_back_scan()
                runsvdir.start(self.scan, self.pid_file, self.log_file)
                fresh = True
        if not fresh:
            self._wait_supervised(added)
        self._progress.note()

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool]:
        """Start the service and return a probe: True once it runs (then the ``down``
        file goes), raising when it failed or when the service ran and went down
        again (a crash: runsv would restart it every second).

        Without ``./check``, the probe sends ``u`` straight into runsv's control
        FIFO (once a runsv listens) and reads its record (no ``sv`` per process: 1,000 of them, each
        polling, were most of a start of 1,000). With one, ``sv -w SECS start``
        runs in the background, as it runs ``./check`` until it passes."""
        live = self.entry(proc)
        if not os.path.isdir(live):
            with start_lock(self.dir, enforce=True):
                built = self._build(proc)
            self._wait_supervised([built] if built else [])
        checked = os.path.exists(os.path.join(live, "check"))
        if checked:
            self._wait_finished(live)
        log_file = str(proc.extra.get("log_file") or "")
        logged = _size(log_file)
        deadline = time.monotonic() + self.start_timeout
        waiter: subprocess.Popen[str] | None = None
        if checked:
            self._wait_supervised([live])  # sv fails on a directory no runsv supervises yet
            waiter = subprocess.Popen(["sv", "-w", str(self.start_timeout), "start", live],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env=runsvdir.environment())
        launched = time.time()
        sent: list[float] = []  # when u went to runsv
        seen_running: list[bool] = []

        def up() -> bool:
            if not proc.extra.get("down"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(live, "down"))
            return True

        def probe() -> bool:
            if waiter is None and not sent:
                # Not while ./finish runs (see _wait_finished), nor before a runsv
                # listens (a fresh runsvdir is still spawning them).
                finishing = self._record(live).state == "finish"
                if finishing or not supervise.send(live, "u"):
                    if self._progress.stalled(deadline, self.start_timeout):
                        raise self._failed(gen, proc, f"its ./finish still runs after "
                                           f"{self.start_timeout} s" if finishing
                                           else f"no runsv supervises {live}")
                    return False
                sent.append(time.time())
                self._progress.note()
            rec = self._record(live)
            if waiter is None:
                # Started once it runs: the engine watches every started process
                # afterwards (its readiness check, or the start grace with a "did it
                # die?" check); a wait here too delayed every start by as much.
                if rec.state == "run" and rec.pid is not None:
                    self._progress.note()
                    return up()
                if rec.want == "u" and rec.state in ("down", "finish") \
                        and rec.changed > sent[0]:
                    raise self._crashed(gen, proc, rec.state, log_file, logged)
                if self._progress.stalled(deadline, self.start_timeout):
                    raise self._failed(gen, proc, f"not running after {self.start_timeout} s "
                                       f"({rec.state})")
                return False
            if rec.state == "run":
                seen_running.append(True)
            elif (seen_running or (rec.want == "u" and rec.state in ("down", "finish")
                                   and rec.changed > launched)) and waiter.poll() is None:
                # Wanted up, yet down (or running ./finish) since after the start: it
                # ran and exited, and runsv waits a second before the next try. That
                # window is far wider than the run of a process that exits at once,
                # which a probe can miss. (runsv records "wanted up" just before it
                # starts the process, so "down" from before the start is no crash.)
                waiter.kill()
                waiter.communicate()
                raise self._crashed(gen, proc, rec.state, log_file, logged)
            if waiter.poll() is None:
                return False
            output, _ = waiter.communicate()
            if waiter.returncode != 0:
                raise self._failed(gen, proc, output.strip())
            return up()

        return probe

    def _failed(self, gen: Generation, proc: DeployedProcess, reason: str) -> DeployError:
        tail = self.diagnose(gen, proc)
        return DeployError(f"runit service {proc.name} failed to start: {reason}"
                           + (f"\n  {tail}" if tail else ""))

    def _crashed(self, gen: Generation, proc: DeployedProcess, state: str, log_file: str,
                 logged: int) -> DeployError:
        """The error of a service that exited right after its start. Found within
        milliseconds, maybe before svlogd wrote what it printed: the log gets a
        moment to grow, for the message."""
        deadline = time.monotonic() + 1.0
        while _size(log_file) <= logged and time.monotonic() < deadline:
            time.sleep(0.02)
        return self._failed(gen, proc, f"it exited right after starting ({state})")

    def _wait_finished(self, live: str) -> None:
        """Wait while ``./finish`` runs (at most the start timeout): the generated one
        of restart "no"/"on-failure" may still tell runsv "d", which would undo the
        start about to be sent (sent afterwards, the start queues behind that "d" in
        runsv's fifo and wins). No other ``./finish`` can begin meanwhile: that
        needs ``./run`` to exit, and it is not running."""
        deadline = time.monotonic() + self.start_timeout
        while self._record(live).state == "finish" and time.monotonic() < deadline:
            time.sleep(0.02)

    def _record(self, live: str) -> supervise.Record:
        """runsv's ``supervise/status`` (:func:`.supervise.read`); state "unsupervised"
        without one."""
        return supervise.read(live) or supervise.Record("unsupervised", None, "", 0.0)

    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """A ``down`` file (it stays down), then ``d`` to runsv (``control/d`` sends
        the stop signal to the process group) and a probe: True once runsv's record
        says down; past the stop timeout ``k`` (SIGKILL), as ``sv force-stop`` does,
        and an error if it still runs a moment later. Non-blocking: the stops of a
        generation are under way at once (the activator is not parallel-safe, so a
        blocking stop held every other one up for its whole wait)."""
        live = self.entry(proc)
        if not os.path.isdir(live):
            return None
        fsutil.write_atomic(os.path.join(live, "down"), "", fsutil.FILE)
        if not runsvdir.supervised(live):
            return None
        own = proc.extra.get("stop_timeout")
        wait = self.stop_timeout if own is None else max(1, math.ceil(float(own)))
        supervise.send(live, "d")
        deadline = [time.monotonic() + wait]
        killed: list[bool] = []

        def probe() -> bool:
            if self._record(live).state in ("down", "unsupervised"):
                return True
            if time.monotonic() <= deadline[0]:
                return False
            if not killed:
                supervise.send(live, "k")
                killed.append(True)
                deadline[0] = time.monotonic() + 2.0
                return False
            st = self.status(gen, proc)
            if not st.running:
                return True
            raise DeployError(f"runit service {proc.name} did not stop within {wait:g} s, "
                              f"nor after SIGKILL: {st.detail}")

        return probe

    def starts_at_once(self, proc: DeployedProcess) -> bool:
        """:meth:`start` returns its probe at once unless the service directory is
        still to be made (then it waits for its runsv) or has a ``./check`` (then
        it waits while ``./finish`` runs before ``sv -w start`` goes out)."""
        live = self.entry(proc)
        return os.path.isdir(live) and not os.path.exists(os.path.join(live, "check"))

    def stops_at_once(self, proc: DeployedProcess) -> bool:
        """:meth:`stop` writes the ``down`` file and ``d`` to runsv and returns a probe."""
        return True

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """From ``supervise/status`` (runsv's binary record: pid, wanted, state)."""
        live = self.entry(proc)
        rec = self._record(live)
        if rec.state == "unsupervised" or not runsvdir.supervised(live):
            return ProcessStatus(proc.name, False, detail="not supervised by runsvdir")
        running = rec.state == "run" and rec.pid is not None
        return ProcessStatus(proc.name, running, rec.pid if running else None,
                             self._exited(live, proc, rec) or rec.state)

    def _exited(self, live: str, proc: DeployedProcess, rec: supervise.Record) -> str:
        """The detail of a process that exited and is not restarted by its policy
        (down, wanted down by its ``./finish``, no ``down`` file as procmgmt's stop
        leaves), else ""."""
        policy = proc.extra.get("restart")
        if policy not in service.FINISH_POLICIES:
            return ""
        if rec.state != "down" or rec.want != "d" or os.path.exists(os.path.join(live, "down")):
            return ""
        how = "exited" if policy == "no" else "exited with status 0"
        return f"{how}, not restarted (restart={policy!r}); procmgmt start {proc.name} " \
               "starts it again"

    def manager_problems(self, gen: Generation) -> list[str]:
        """runsvdir gone (killed, crashed) while the generation has processes: each
        runsv goes on, so every process looks fine, but a new service directory is
        not picked up until a switch starts runsvdir again."""
        if not gen.processes or not os.path.isdir(self.scan) \
                or runsvdir.find_running(self.pid_file, self.scan):
            return []
        return [f"runsvdir of {self.scan} is not running: the processes run on under "
                "their runsv, but nothing new is picked up; the next switch starts it "
                "again (procmgmt switch --switch-generation N, N the current one)"]

    def finish(self, new: Generation, old: Generation | None) -> None:
        """Remove the service directories ``new`` does not have (stopped by now);
        with nothing left, stop runsvdir."""
        keep = {os.path.basename(self.entry(p)) for p in new.processes}
        if not os.path.isdir(self.scan):
            return
        entries = sorted(os.listdir(self.scan))
        self._remove_all([os.path.join(self.scan, e) for e in entries
                          if not e.startswith(".") and e not in keep],
                         [os.path.join(self.scan, e) for e in entries if e.startswith(".")])
        if not new.processes:
            runsvdir.stop(runsvdir.find_running(self.pid_file, self.scan))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pid_file)
