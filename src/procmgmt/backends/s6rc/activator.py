"""The s6-rc activator: compile the generation, initialise or update the live state.

Layout under ``<procmgmt_dir>/s6-rc/<profile>/``: ``scan/`` (procmgmt's own
s6-svscan, started as the s6 backend starts it: :mod:`procmgmt.backends.s6.svscan`),
``compiled/<generation>`` (one compiled database per generation), ``current``
(the symlink s6-rc-init is given as its boot database, moved after every
update as s6-rc-update.html's notes advise), ``live`` (s6-rc's live state),
and ``conversion/<generation>`` (the conversion file of each update).

A switch is one :meth:`S6RcActivator.apply`, because s6-rc-update takes a
whole database:

1. ``s6-rc-compile`` the generation's source directories (after checking
   them with :mod:`.sourcecheck`) into a new compiled database;
2. first deployment (no live state): ``s6-rc-init -c current -l live scan``;
   afterwards: ``s6-rc -d change`` of the removed processes, then
   ``s6-rc-update -f CONVFILE`` with ``restart`` for every service whose
   definition changed (:mod:`.update`: s6-rc-update itself would keep the
   old program running);
3. ``s6-rc -u change default``: everything up, dependencies first, waiting
   for readiness where a service has a ``notification-fd``.

Every command goes through :data:`~procmgmt.backends._activation.Runner`, so
the command plan is tested without s6-rc (which is not packaged here).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from collections.abc import Sequence

from procmgmt import fsutil
from procmgmt.backends._activation import CommandResult, Runner, subprocess_runner, tail
from procmgmt.backends.base import Activator, LogSource, ProcessStatus, Tool
from procmgmt.backends.s6 import svscan
from procmgmt.backends.s6.activator import SVSTAT_OPTIONS, svstat_status
from procmgmt.backends.s6rc import sourcecheck, update
from procmgmt.backends.s6rc.source import DEFAULT_BUNDLE
from procmgmt.backends.shared.startlock import start_lock
from procmgmt.deploy.plan import Plan
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: The programs a deployment runs (Debian/Alpine package ``s6-rc``, with ``s6``).
TOOLS = ("s6-rc-compile", "s6-rc-init", "s6-rc-update", "s6-rc", "s6-svscan",
         "s6-svscanctl", "s6-svstat", "s6-notifyoncheck", "s6-log")


class Supervisor:
    """procmgmt's s6-svscan over the scan dir s6-rc-init links the services into."""

    def __init__(self, directory: str, scan_dir: str, pid_file: str, log_file: str) -> None:
        self.dir, self.scan_dir = directory, scan_dir
        self.pid_file, self.log_file = pid_file, log_file

    def ensure(self, processes: int) -> None:
        """Start one (under the start lock) unless it runs, sized for ``processes``."""
        with start_lock(self.dir):
            if not svscan.find_running(self.pid_file, self.scan_dir):
                svscan.start(self.scan_dir, self.pid_file, self.log_file, processes)

    def shutdown(self, timeout: float = 30.0) -> None:
        """``s6-svscanctl -t`` and wait for it to exit."""
        for pid in svscan.find_running(self.pid_file, self.scan_dir):
            svscan.control(self.scan_dir, "-t")
            svscan.stop_pid(pid, timeout)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pid_file)


class S6RcActivator(Activator):
    """s6-rc over procmgmt's s6-svscan, one live state per (state dir, profile)."""

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 supervisor: Supervisor | None = None) -> None:
        super().__init__(settings)
        self.dir = os.path.join(settings.procmgmt_dir, "s6-rc", settings.profile)
        self.scan_dir = os.path.join(self.dir, "scan")
        self.compiled_dir = os.path.join(self.dir, "compiled")
        self.conversion_dir = os.path.join(self.dir, "conversion")
        self.current = os.path.join(self.dir, "current")
        self.live = os.path.join(self.dir, "live")
        tag = f"s6-svscan-s6-rc-{settings.profile}"
        self.run: Runner = runner or subprocess_runner
        self.supervisor = supervisor or Supervisor(
            self.dir, self.scan_dir, os.path.join(settings.runtime_dir, f"{tag}.pid"),
            os.path.join(settings.log_dir, f"{tag}.log"))

    # -- commands --------------------------------------------------------------

    def _command(self, *argv: str) -> CommandResult:
        """Run an s6-rc program (by absolute path when installed); fail loudly."""
        result = self.run([svscan.tool(argv[0]), *argv[1:]])
        if result.returncode != 0:
            raise DeployError(f"{' '.join(argv)} failed (exit status {result.returncode}):\n"
                              f"{tail(result.output)}")
        return result

    def change(self, direction: str, services: Sequence[str]) -> None:
        """``s6-rc -l live -u|-d change SERVICES``."""
        self._command("s6-rc", "-l", self.live, direction, "change", *services)

    @staticmethod
    def services(proc: DeployedProcess) -> list[str]:
        """The s6-rc services of a process: itself and its logger."""
        names = proc.extra.get("services")
        return [str(n) for n in names] if isinstance(names, list) else [proc.name]

    def initialised(self) -> bool:
        """s6-rc-init made the live state (``live`` is its symlink)."""
        return os.path.lexists(self.live)

    # -- Activator -------------------------------------------------------------

    def required_tools(self, gen: Generation) -> list[Tool]:
        """s6-rc's and s6's programs."""
        return [Tool(name, svscan.tool(name), "install s6-rc (with s6 and execline)")
                for name in TOOLS]

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """The state directories, and s6-svscan when there is something to run."""
        for path in (self.dir, self.scan_dir, self.compiled_dir, self.conversion_dir):
            fsutil.ensure_dir(path, enforce=True)
        fsutil.ensure_dir(self.settings.log_dir)
        fsutil.ensure_dir(self.settings.runtime_dir)
        if new.processes:
            # -c as for s6 (4 supervisors a process): more than s6-rc's 2 a process
            # (service and logger) plus its own fdholder and oneshot runner.
            self.supervisor.ensure(max(len(new.processes), len(old.processes) if old else 0))

    def compile(self, gen: Generation) -> str:
        """The compiled database of ``gen``: checked, compiled beside its final
        name and renamed (a database that is there is complete)."""
        target = os.path.join(self.compiled_dir, os.path.basename(gen.path))
        if os.path.isdir(target):
            return target
        sources = [s for s in update.sources(gen) if os.path.isdir(s)]
        problems = sourcecheck.check(sources)
        if problems:
            raise DeployError("the s6-rc source directories are invalid:\n  "
                              + "\n  ".join(problems))
        tmp = os.path.join(self.compiled_dir, f".{os.path.basename(gen.path)}.{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        self._command("s6-rc-compile", "-v", "1", tmp, *sources)
        os.rename(tmp, target)
        return target

    def _point_current(self, compiled: str) -> None:
        """Make ``current`` name ``compiled`` (a new symlink renamed over it)."""
        tmp = f"{self.current}.new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(compiled, tmp)
        os.replace(tmp, self.current)

    def apply(self, new: Generation, old: Generation | None, plan: Plan) -> None:
        """Compile, init or update (with the conversion file), then ``-u change default``."""
        if not new.processes:
            if self.initialised():
                self._command("s6-rc", "-l", self.live, "-da", "change")
            return
        compiled = self.compile(new)
        if not self.initialised():
            self._point_current(compiled)
            self._command("s6-rc-init", "-c", self.current, "-l", self.live, self.scan_dir)
        else:
            kept = new.by_name()
            removed = [s for p in plan.stop if p.name not in kept for s in self.services(p)]
            if removed:
                self.change("-d", removed)
            restart = [] if old is None else update.changed_services(
                update.service_hashes(old), update.service_hashes(new))
            conv = os.path.join(self.conversion_dir, os.path.basename(new.path))
            fsutil.write_atomic(conv, update.conversion_file(restart), fsutil.FILE)
            self._command("s6-rc-update", "-l", self.live, "-f", conv, compiled)
            self._point_current(compiled)
            self._forget_databases(keep=compiled)
        self.change("-u", [DEFAULT_BUNDLE])

    def _forget_databases(self, keep: str) -> None:
        """Delete compiled databases s6-rc-update freed (every one but the live one)."""
        for path in glob.glob(os.path.join(self.compiled_dir, "*")):
            if path != keep:
                shutil.rmtree(path, ignore_errors=True)

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """``s6-rc -u change`` of the process and its logger (a rollback's restart)."""
        self.change("-u", self.services(proc))

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``s6-rc -d change`` of the process and its logger."""
        if self.initialised():
            self.change("-d", self.services(proc))

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """``s6-svstat -o up,ready,pid`` of the service directory s6-rc-init linked."""
        result = self.run([svscan.tool("s6-svstat"), *SVSTAT_OPTIONS,
                           os.path.join(self.scan_dir, proc.name)])
        if result.returncode != 0:
            return ProcessStatus(proc.name, False, detail=tail(result.output, 1)
                                 or "not supervised")
        return svstat_status(proc, result.output)

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """s6-log's ``current`` file of the process."""
        path = proc.extra.get("log_file")
        return LogSource(files=(str(path),) if isinstance(path, str) else ())

    def finish(self, new: Generation, old: Generation | None) -> None:
        """An empty generation: s6-svscan exits and the live state and databases go
        (the next deployment initialises again)."""
        if new.processes:
            return
        self.supervisor.shutdown()
        for path in glob.glob(os.path.join(self.dir, "live*")):
            if os.path.islink(path):
                os.unlink(path)
            else:
                shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.current)
        shutil.rmtree(self.compiled_dir, ignore_errors=True)
