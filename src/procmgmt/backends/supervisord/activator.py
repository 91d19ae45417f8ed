"""The supervisord activator: deploys generations into one supervisord per profile.

The activator talks XML-RPC over supervisord's unix socket (:mod:`.control`),
adds and removes one process group per program, and shuts an idle supervisord
down after stopping its programs first (a ``shutdown`` with programs running
can take tens of seconds: see the perf baselines). Starts do not block:
:meth:`SupervisordActivator.start` adds the group (autostart spawns it) and
returns a probe the engine polls; every probe and status call reads one shared
``getAllProcessInfo`` table (refreshed at most every 20 ms) instead of asking
per program. A first deploy without dependency edges boots supervisord with
the programs already in its config, so it spawns them all in its first pass
and the probes only watch; the undeploy of such a generation stops every program with
one request and shuts supervisord down (:meth:`SupervisordActivator.apply`).

The supervisord is procmgmt's own (:mod:`.embedded`: started on demand), or,
with ``PROCMGMT_SUPERVISORD_CONF``, someone else's that runs already
(:mod:`.external`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from typing import Any

from procmgmt import fsutil
from procmgmt.backends._activation import pid_verdict
from procmgmt.backends.base import Activator, LogSource, ProcessStatus
from procmgmt.backends.shared.startlock import start_lock
from procmgmt.backends.supervisord import control, embedded, external, links
from procmgmt.backends.supervisord.external import (
    EXTERNAL_CONF_ENV,
    EXTERNAL_CONF_SETTING,
    ExternalSupervisord,
)
from procmgmt.deploy.plan import Plan
from procmgmt.errors import DeployError, UsageError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.pids import pid_alive
from procmgmt.settings import Settings
from procmgmt.testhooks import fail_point

log = logging.getLogger(__name__)

#: Seconds a freshly added program may stay STOPPED before we start it ourselves
#: (autostart normally spawns it on supervisord's next loop iteration).
_AUTOSTART_GRACE = 0.5


class SupervisordActivator(Activator):
    """Starts and drives one supervisord per (state dir, profile) over XML-RPC.

    Layout: ``<procmgmt_dir>/supervisord/<profile>/`` holds ``supervisord.conf``,
    ``conf.d/programs.conf`` (every program's section, :mod:`.links`) and
    ``bin/<name>-proxy`` symlinks into the store entries of the deployed
    generation. The socket and pid file live in the
    runtime dir, supervisord's own log in the log dir.

    With ``external`` (or ``PROCMGMT_SUPERVISORD_CONF``) the supervisord is
    someone else's, already running: the links go into its include dir (and
    ``bin/`` next to it), and procmgmt never starts or shuts it down. Which
    links are ours is recorded in ``<procmgmt_dir>/supervisord/<profile>/external.json``
    (with the config file, so later switches of the profile find it again).
    """

    #: Every call opens its own XML-RPC connection: safe from several threads.
    parallel_safe = True

    #: Seconds to wait for a program to reach RUNNING (or survive ``settle``).
    start_timeout = 30.0
    #: A program STARTING with a live pid for this long counts as started.
    #: 0: the engine watches every started program concurrently afterwards
    #: (readiness check or grace time), and waiting here, or for
    #: ``startsecs`` (1 s), would cost that time per program.
    settle = 0.0
    #: Seconds to wait for programs to stop (above the default stopwaitsecs=10,
    #: after which supervisord kills).
    stop_timeout = 30.0
    #: Seconds to wait for a fresh supervisord to answer (its first spawn pass
    #: blocks the socket).
    answer_timeout = 60.0
    #: Seconds one "are you there" call may take before it counts as no answer
    #: (a stopped or wedged supervisord accepts the connection and never replies).
    probe_timeout = 5.0

    def __init__(self, settings: Settings, external: str | None = None) -> None:
        super().__init__(settings)
        self.dir = os.path.join(settings.procmgmt_dir, "supervisord", settings.profile)
        self.conf = os.path.join(self.dir, "supervisord.conf")
        tag = f"supervisord-{settings.profile}"
        self.socket_path = os.path.join(settings.runtime_dir, f"{tag}.sock")
        self.pid_file = os.path.join(settings.runtime_dir, f"{tag}.pid")
        self.log_file = os.path.join(settings.log_dir, f"{tag}.log")
        self.conf_d = os.path.join(self.dir, "conf.d")
        self.bin_dir = os.path.join(self.dir, "bin")
        self.record_file = os.path.join(self.dir, "external.json")
        self.external: ExternalSupervisord | None = None
        self._use_external(external if external is not None
                           else EXTERNAL_CONF_SETTING.read())
        self._snapshot = control.Snapshot(self._fetch_table)
        self._batcher = control.Batcher(self.rpc)
        #: Groups supervisord added (and autostarted) itself when it booted with them,
        #: and when it first answered (its first loop pass had spawned them).
        self._booted: set[str] = set()
        self._booted_at = float("-inf")
        #: The switch being prepared takes every program away at once (:meth:`apply`).
        self._stops_all = False

    def _fetch_table(self) -> list[dict[str, Any]]:
        return control.fetch_table(self.rpc())

    def _use_external(self, conf: str | None) -> None:
        """Bind to an external supervisord: the one asked for, else the one this
        profile's programs were deployed into (recorded), else none (our own)."""
        ext = external.bind(conf, external.read_record(self.record_file), self.settings.profile)
        if ext is None:
            return
        self.external = ext
        self.conf = ext.conf
        self.socket_path = ext.socket
        self.conf_d = ext.include_dir
        self.bin_dir = ext.bin_dir

    # -- configuration -------------------------------------------------------

    def check_paths(self) -> None:
        """Paths supervisord cannot use, as a UsageError naming the fix."""
        embedded.check_paths(self.dir, self.socket_path, self.pid_file, self.log_file)

    def base_config(self, programs: int, nodaemon: bool = False) -> str:
        """The ``supervisord.conf`` of our own supervisord."""
        return embedded.base_config(self.settings, directory=self.dir,
                                    socket_path=self.socket_path, pid_file=self.pid_file,
                                    log_file=self.log_file, programs=programs,
                                    nodaemon=nodaemon)

    def write_base_config(self, programs: int, nodaemon: bool = False) -> None:
        """Write ``supervisord.conf`` and create the directories it names."""
        self.check_paths()
        for d in (self.settings.runtime_dir, self.settings.log_dir, self.settings.tmp_dir):
            fsutil.ensure_dir(d)
        # conf.d and bin say what supervisord (maybe root) runs: never writable by
        # others, whatever the caller's umask or an older version left.
        for d in (os.path.dirname(self.dir), self.dir, os.path.join(self.dir, "conf.d"),
                  os.path.join(self.dir, "bin")):
            fsutil.ensure_dir(d, enforce=True)
        # supervisord opens its log before it sets its umask: create it ourselves.
        os.close(fsutil.open_file(self.log_file, fsutil.LOG, os.O_WRONLY | os.O_APPEND))
        fsutil.write_atomic(self.conf, self.base_config(programs, nodaemon), fsutil.FILE)

    def link(self, gen: Generation | None) -> bool:
        """Make conf.d/ and bin/ hold exactly ``gen``'s program and proxy files;
        True when anything changed (:func:`.links.link`)."""
        return links.link(gen, conf_d=self.conf_d, bin_dir=self.bin_dir, ext=self.external,
                          record_file=self.record_file, profile=self.settings.profile)

    # -- talking to supervisord ----------------------------------------------

    def rpc(self, timeout: float | None = None) -> Any:
        """An XML-RPC proxy over the unix socket (supervisor's own transport)."""
        return control.connect(self.socket_path, timeout)

    def running(self, timeout: float | None = None) -> bool:
        """True when our supervisord answers on its socket (within ``timeout``)."""
        return os.path.exists(self.socket_path) and control.answers(self.rpc(timeout))

    def profile_supervisords(self) -> list[int]:
        """PIDs of the supervisord processes of this profile, answering or not."""
        return embedded.find_running(self.pid_file, self.conf)

    def _start_needed(self) -> bool:
        """True when no supervisord of this profile exists (the caller holds the start
        lock and starts one). One that exists but does not answer yet is waited for,
        never doubled: a second supervisord would read the same files, fight over
        the socket and start every program twice."""
        if self.running(timeout=self.probe_timeout):
            return False
        pids = self.profile_supervisords()
        if not pids:
            return True
        self._wait_answering(pids=pids)
        return False

    def supervisord_pid(self) -> int | None:
        """The pid from supervisord's pid file, if any."""
        return embedded.read_pid(self.pid_file)

    def _wait_answering(self, proc: subprocess.Popen[bytes] | None = None,
                        pids: Sequence[int] = ()) -> None:
        deadline = time.monotonic() + self.answer_timeout
        while time.monotonic() < deadline:
            if self.running(timeout=max(0.1, min(self.probe_timeout,
                                                 deadline - time.monotonic()))):
                return
            if proc is not None and proc.poll() is not None and proc.returncode != 0:
                break
            if pids and not any(pid_alive(p) for p in pids):
                break
            time.sleep(0.01)
        if pids:
            listed = " ".join(str(p) for p in pids)
            raise DeployError(
                f"the supervisord of profile {self.settings.profile} (pid {listed}) runs but "
                f"did not answer on {self.socket_path} within {self.answer_timeout:g} s; it "
                f"may still be reading a very large configuration (see {self.log_file}). "
                "procmgmt never starts a second supervisord for a profile: wait and retry, "
                f"or stop it ('kill {listed}') and retry")
        raise DeployError(f"supervisord ({self.conf}) did not answer on {self.socket_path}; "
                          f"see {self.log_file}")

    def start_supervisord(self) -> None:
        """Start our supervisord (it daemonizes) and wait until it answers."""
        embedded.start(self.conf, self.pid_file, self.answer_timeout)
        self._wait_answering()

    # -- Activator -----------------------------------------------------------

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Bring supervisord up (with ``old``'s programs, as before a reboot), then
        switch conf.d to ``new`` and reread it: running programs are untouched.

        A first deploy (nothing before, supervisord not running) of a generation
        without dependency edges boots supervisord with ``new``'s programs in its
        config: it spawns them all in its first pass, without an add request per program
        (and without re-parsing every file in a ``reloadConfig``); :meth:`start`
        then only watches them. With edges, the engine starts each program once
        its dependencies are ready, so supervisord must not start them itself.
        An external supervisord is never started: it must be running."""
        self._booted = set()
        self._snapshot.invalidate()
        self._stops_all = self.external is None and not new.processes \
            and old is not None and bool(old.processes) \
            and not any(p.dependencies for p in old.processes)
        if self.external is not None:
            if not self.running():
                raise DeployError(
                    f"the supervisord of {self.conf} ({EXTERNAL_CONF_ENV}) does not answer "
                    f"on {self.socket_path}: start it first; procmgmt never starts or "
                    "shuts down a supervisord it did not start")
            if old is not None and old.processes \
                    and not external.read_record(self.record_file).get("names"):
                raise UsageError(
                    f"profile {self.settings.profile} runs its programs in its own "
                    f"supervisord: undeploy them before deploying into {self.conf}")
            self.link(new)
            self._reload()
            return
        programs = max(len(new.processes), len(old.processes) if old else 0)
        with start_lock(self.dir):
            start = self._start_needed()
            if start:
                self.write_base_config(programs)
                boot = (old is None or not old.processes) and bool(new.processes) \
                    and not any(p.dependencies for p in new.processes)
                self.link(new if boot else old)
                self.start_supervisord()
                if boot:
                    self._booted = {_group(p) for p in new.processes}
                    self._booted_at = time.monotonic()
                    return
        if not start:
            embedded.warn_if_fds_short(self.conf, programs, self.settings.profile)
            self.write_base_config(programs)
        self.link(new)
        if not self._stops_all:  # shut down next: it never needs the files again
            self._reload()

    @property
    def applies_plans(self) -> bool:
        """True for the switch just prepared when it is the undeploy of every program
        of our own supervisord and no program depends on another: :meth:`apply`
        then takes it. Otherwise the engine stops and starts program by program
        (dependents stop first, dependencies start first)."""
        return self._stops_all

    def apply(self, new: Generation, old: Generation | None, plan: Plan) -> None:
        """The undeploy of every program (only then does :attr:`applies_plans` say
        so): stop them all with one request and shut supervisord down
        (:meth:`shutdown`), as an admin would with ``supervisorctl stop all``
        and ``shutdown``. The engine noted every stop in its journal first, as
        for stops one by one. Stopping program by program costs the engine a
        stop, a table and a removal per program, then the same shutdown; with
        nothing left to supervise and no order to keep, that buys nothing."""
        if not self._stops_all or old is None:
            raise DeployError("supervisord takes a whole switch only when it stops every "
                              "program (an internal error: the engine asked anyway)")
        self._stops_all = False
        self.shutdown(stop_wait=max(self._stop_wait(p) for p in old.processes))

    def _reload(self) -> None:
        """``reloadConfig``: supervisord reads the program files anew (``reread``)."""
        fail_point("reload")
        try:
            self.rpc().supervisor.reloadConfig()
        except xmlrpc.client.Fault as fault:
            # e.g. a user= that does not exist (yet): supervisord parses it here.
            raise DeployError(f"supervisord rejected the programs in {self.conf_d}: "
                              f"{fault.faultString}") from None

    def _stop_wait(self, proc: DeployedProcess) -> float:
        """How long to wait for ``proc`` to stop: :attr:`stop_timeout`, or longer
        when the model gave it a longer ``stop_timeout`` (its stopwaitsecs)."""
        own = proc.extra.get("stop_timeout")
        return max(self.stop_timeout, float(own) + 5) if own is not None else self.stop_timeout

    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Ask supervisord to stop the program's group and return a probe that
        forgets the group once nothing of it runs; absent is fine (also when
        supervisord is not running: then nothing of it runs).

        Not waiting here: the stop (``wait=False``: a waiting one is answered
        only after supervisord's 1-s poll) and the removal go through the
        :class:`~.control.Batcher`, so a thousand stops cost a few multicalls,
        and one shared process table (:class:`~.control.Snapshot`) tells when
        each is down."""
        name = _group(proc)
        self._booted.discard(name)
        # stopProcess, not stopProcessGroup: the group form is always deferred by
        # supervisord (answered in a later loop iteration, about 1 s each inside a
        # multicall); each group holds the one program of the same name.
        asked = self._batcher.submit("supervisor.stopProcess", f"{name}:{name}", False)
        deadline = time.monotonic() + self._stop_wait(proc)
        removing: list[control.Call] = []
        checked: list[bool] = []
        #: Read a table requested after this (the stop's answer, then the last table read).
        after: list[float] = []

        def probe() -> bool:
            if removing:
                return removing[0].done() and self._stop_outcome(name, "remove", removing[0])
            if not asked.done():
                return False
            if not checked:
                checked.append(True)
                if not self._stop_outcome(name, "stop", asked):
                    return True  # supervisord is gone: so is the program
            if asked.exception() is None:
                # A table asked for after the stop was answered tells the truth.
                table = self._snapshot.poll(after[0] if after else asked.answered_at)
                if table is None:
                    return False
                info = table[0].get(name)
                if info is not None and info.get("statename") in control.ACTIVE_STATES:
                    if time.monotonic() > deadline:
                        raise DeployError(f"supervisord did not stop {name} within "
                                          f"{self._stop_wait(proc):g} s")
                    after[:] = [table[1]]
                    return False
            removing.append(self._batcher.submit("supervisor.removeProcessGroup", name))
            return False

        return probe

    def _stop_outcome(self, name: str, what: str, fut: control.Call) -> bool:
        """Whether a batched stop or remove of ``name`` leaves supervisord to ask
        further (False: it is not running, nothing of the program can be).
        Faults that mean "not there" or "not running" are fine; others fail."""
        exc = fut.exception()
        if exc is None:
            return True
        if isinstance(exc, OSError | xmlrpc.client.ProtocolError):
            if self.running():
                raise DeployError(f"supervisord could not {what} {name}: {exc}") from None
            return False
        if isinstance(exc, xmlrpc.client.Fault):
            fine = ((control.FAULT_BAD_NAME, control.FAULT_NOT_RUNNING) if what == "stop"
                    else (control.FAULT_BAD_NAME,))
            if exc.faultCode in fine:
                return True
            raise DeployError(f"supervisord could not {what} {name}: {exc.faultString}") \
                from None
        raise exc

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool]:
        """Add the group (autostart spawns it) unless supervisord booted with it,
        start it when it does not autostart, and return a probe: True once it runs
        (or is STARTING with a pid for ``settle`` s), raising when it failed.

        The add goes through the :class:`~.control.Batcher` (a thousand starts
        cost a few multicalls); the probe waits for its answer first."""
        name = _group(proc)
        kick = proc.extra.get("autostart") is not True
        if name in self._booted:
            if kick:
                self._start_group(name)
                return self._started_probe(name, time.monotonic())
            # Any table supervisord answered after booting knows its first spawns:
            # one table serves every booted program, however late the engine
            # gets to each.
            return self._started_probe(name, self._booted_at)
        added = self._batcher.submit("supervisor.addProcessGroup", name)
        started: list[Callable[[], bool]] = []

        def probe() -> bool:
            if not started:
                if not added.done():
                    return False
                if not self._added(name, added) or kick:
                    # Added before (maybe stopped since), or not autostarted
                    # (overridden, or an older manifest that does not say).
                    self._start_group(name)
                # A table asked for after the add was answered knows the program.
                started.append(self._started_probe(name, added.answered_at))
            return started[0]()

        return probe

    def _added(self, name: str, call: control.Call) -> bool:
        """Whether the batched ``addProcessGroup`` of ``name`` added it (False: it
        was there already); DeployError when supervisord refused it."""
        exc = call.exception()
        if exc is None:
            return True
        if isinstance(exc, xmlrpc.client.Fault):
            if exc.faultCode == control.FAULT_BAD_NAME:
                raise DeployError(f"supervisord does not know program {name}; "
                                  f"are its programs in {self.conf_d}?") from None
            if exc.faultCode == control.FAULT_ALREADY_ADDED:
                return False
            raise DeployError(f"supervisord could not add {name}: {exc.faultString}") from None
        raise DeployError(f"supervisord ({self.socket_path}) stopped answering while "
                          f"{name} was added: {exc}") from None

    def _start_group(self, name: str) -> None:
        try:
            self.rpc().supervisor.startProcessGroup(name, False)
        except xmlrpc.client.Fault as fault:
            # Processes already spawned (autostart) are skipped by supervisord.
            if fault.faultCode != control.FAULT_ALREADY_STARTED:
                raise self._start_failed(name, fault.faultString) from None
        self._snapshot.invalidate()

    def _started_probe(self, name: str, since: float) -> Callable[[], bool]:
        """Non-blocking: has ``name`` started (from the shared process table)?"""
        deadline = since + self.start_timeout
        starting_since: list[float] = []
        kicked: list[bool] = []
        #: Read a table requested after this (``since``, then the last table read).
        after = [since]

        def probe() -> bool:
            try:
                table = self._snapshot.poll(after[0])
            except (OSError, xmlrpc.client.ProtocolError) as exc:
                raise DeployError(f"supervisord ({self.socket_path}) stopped answering while "
                                  f"{name} started: {exc}") from None
            now = time.monotonic()
            if table is None:
                if now > deadline:
                    raise self._start_failed(name, f"no answer after {self.start_timeout:g} s")
                return False
            infos, at = table
            after[0] = at
            info = infos.get(name)
            if info is None:
                raise DeployError(f"supervisord has no program {name} after adding it")
            state = info.get("statename")
            if state == "RUNNING":
                return True
            if state in control.FAILED_STATES:
                raise self._start_failed(name, str(info.get("spawnerr") or state))
            if state == "STARTING" and info.get("pid"):
                if not starting_since:
                    starting_since.append(now)
                return now - starting_since[0] >= self.settle
            if state == "STOPPED" and not kicked and at > since + _AUTOSTART_GRACE:
                # autostart did not spawn it (someone stopped it right away?): start it.
                kicked.append(True)
                self._start_group(name)
            if now > deadline:
                raise self._start_failed(name, f"still {state} after {self.start_timeout:g} s")
            return False

        return probe

    def _start_failed(self, name: str, reason: str) -> DeployError:
        tail = ""
        try:
            lines = control.log_tail(self.rpc(), name)
            if lines:
                tail = "\n  last lines of its log:\n    " + "\n    ".join(lines)
        except (OSError, xmlrpc.client.Fault):
            pass
        return DeployError(f"supervisord program {name} failed to start: {reason}{tail}")

    def diagnose(self, gen: Generation, proc: DeployedProcess) -> str:
        """The last lines supervisord captured from the program."""
        try:
            lines = control.log_tail(self.rpc(), _group(proc))
        except (OSError, xmlrpc.client.Fault):
            return ""
        return ("last lines of its log:\n    " + "\n    ".join(lines)) if lines else ""

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """``reload`` through supervisord's ``signalProcess`` (its own record of the
        program's pid); a proxied daemon's through the daemon's pid file (the proxy
        forwards only HUP). The rest as for every activator."""
        if activity != "reload" or proc.extra.get("wraps_daemon"):
            return super().activity(gen, proc, activity)
        name = f"{_group(proc)}:{_group(proc)}"
        sig = proc.reload_signal or "HUP"
        try:
            self.rpc().supervisor.signalProcess(name, sig)
        except xmlrpc.client.Fault as exc:
            print(f"{proc.name}: supervisord cannot send SIG{sig}: {exc.faultString}",
                  file=sys.stderr)
            return 1
        print(f"{proc.name}: sent SIG{sig} through supervisord")
        return 0

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """The program's log files as its manifest records them (they stay where they are
        while it is stopped and supervisord forgets the program); otherwise (an override
        with ``AUTO``) the ones supervisord reports."""
        files = [str(f) for f in (proc.extra.get("log_file"), proc.extra.get("stderr_log_file"))
                 if isinstance(f, str) and f.startswith("/")]
        if not files:
            try:
                info = self.rpc().supervisor.getProcessInfo(f"{_group(proc)}:{_group(proc)}")
            except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
                info = {}
            files = [str(info[k]) for k in ("stdout_logfile", "stderr_logfile")
                     if str(info.get(k) or "").startswith("/")]
        return LogSource(files=tuple(dict.fromkeys(files)))

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """Running (RUNNING or STARTING) and the pid supervisord tracks (the proxy's,
        for a wrapped daemon: the daemon's pid is in the detail).

        The shared table may be a moment old (see :class:`~.control.Snapshot`), and
        supervisord notices an exit only when its loop wakes: a pid our own
        supervisord reports that is gone (or a zombie) now counts as not
        running. That is what makes the engine's start grace ("still alive
        0.2 s later") true without fetching the table again. Not for an
        external supervisord: it may report pids of another pid namespace."""
        name = _group(proc)
        try:
            infos, _ = self._snapshot.get()
        except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            return ProcessStatus(name, False, detail="supervisord is not running")
        info = infos.get(name)
        if info is None:
            return ProcessStatus(name, False, detail=f"supervisord has no program {name}")
        state = str(info.get("statename"))
        pid = int(info.get("pid") or 0) or None
        running = state in ("RUNNING", "STARTING")
        detail = state
        if running and pid is not None and self.external is None and not pid_alive(pid):
            running, detail = False, f"{state} but its pid {pid} has exited"
        if proc.extra.get("proxy") and proc.pid_file:
            verdict = pid_verdict(proc, self.settings)
            if verdict.trusted and verdict.pid != pid:
                detail += f" (proxy of daemon pid {verdict.pid})"
            elif verdict.refused:
                detail += f" ({verdict.detail})"
        return ProcessStatus(name, running, pid, detail)

    def finish(self, new: Generation, old: Generation | None) -> None:
        """An empty generation leaves nothing to supervise: shut supervisord down.
        An external one keeps running; its include dir gets exactly ``new``'s
        files of ours (after an undone first deploy: none)."""
        if self.external is not None:
            if self.running() and self.link(new):
                self._reload()
            return
        if not new.processes:
            self.shutdown()

    def shutdown(self, timeout: float = 30.0, stop_wait: float | None = None) -> None:
        """Stop every program, then supervisord; wait until its pid is gone (it exits
        once it reaped every program).

        ``stopAllProcesses`` without waiting (it signals every program at once;
        a ``shutdown`` alone stops one group per loop iteration), then
        ``shutdown`` right away: supervisord exits as soon as nothing of it
        runs. Neither waits inside supervisord: its loop notices an exit only
        when something wakes it (SIGCHLD does not: up to 1 s in ``poll``, and a
        waiting ``stopAllProcesses`` is answered that late), so while its pid
        lives a cheap ``getState`` every 10 ms wakes it to reap and look again.
        supervisord kills what outlives its stopwaitsecs; we give up
        ``stop_wait`` (default :attr:`stop_timeout`; more when a program's
        stopwaitsecs is longer) plus ``timeout`` seconds after asking."""
        if self.external is not None:
            raise UsageError(f"the supervisord of {self.conf} is not procmgmt's: "
                             "procmgmt does not shut it down")
        if not self.running():
            return
        pid = self.supervisord_pid()
        wait = self.stop_timeout if stop_wait is None else stop_wait
        server = self.rpc(timeout=self.probe_timeout)
        with contextlib.suppress(xmlrpc.client.Fault):
            server.supervisor.stopAllProcesses(False)
        with contextlib.suppress(xmlrpc.client.Fault, OSError):
            server.supervisor.shutdown()
        deadline = time.monotonic() + wait + timeout
        while pid is not None and pid_alive(pid):
            if time.monotonic() > deadline:
                raise DeployError(f"supervisord (pid {pid}) did not exit within "
                                  f"{wait + timeout:g} s of being asked to stop its programs "
                                  f"and shut down; see {self.log_file}")
            with contextlib.suppress(OSError, xmlrpc.client.Error):
                self.rpc(timeout=self.probe_timeout).supervisor.getState()
            time.sleep(0.01)


def _group(proc: DeployedProcess) -> str:
    return str(proc.extra.get("group") or proc.name)
