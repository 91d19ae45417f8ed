"""Running the generated sysvinit scripts: ``<store path>/<script> start|stop|...``.

No init system is involved: the activator runs each process's script from
the store. Every command goes through a :data:`~procmgmt.backends._activation.Runner`
(tests record the plan); the generated stop, which many processes need at
once, is done here with signals instead (no shell per process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence

from procmgmt.backends import _activation
from procmgmt.backends._activation import (
    TIMED_OUT,
    CommandResult,
    Runner,
    pid_alive,
    pid_file_status,
    pid_verdict,
    subprocess_runner,
)
from procmgmt.backends.base import (
    Activator,
    ProcessStatus,
)
from procmgmt.backends.shared import ready
from procmgmt.backends.sysvinit.script import DEFAULT_START_TIMEOUT, DEFAULT_STOP_TIMEOUT
from procmgmt.errors import DeployError
from procmgmt.fsutil import read_count
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.pids import MARKER_DEPLOYMENT, MARKER_PROCESS, group_alive
from procmgmt.settings import Settings
from procmgmt.validate import deployment_id

#: Extra seconds the activator allows beyond the script's own timeouts.
ACTIVATOR_SLACK = 60
#: Seconds ``stop`` waits after SIGKILL, in the script and here.
KILL_WAIT = 5
#: The environment ``start`` adds for the script: the engine watches every
#: started process itself (readiness check or grace time), concurrently, so
#: the script skips its own crash grace and readiness wait.
ENGINE_START_ENV = {"PROCMGMT_START_GRACE": "0", ready.READY_WAIT_ENV: "0"}


def _remove(path: str) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _signal(target: int, sig: int) -> None:
    """Signal a pid (or, negative, a process group); gone already is fine."""
    with contextlib.suppress(ProcessLookupError):
        if target < 0:
            os.killpg(-target, sig)
        else:
            os.kill(target, sig)


class SysVInitActivator(Activator):
    """Runs the generated scripts directly: ``<store path>/<script> start|stop|...``.

    ``runner`` stands in for running the scripts (tests record the command
    plan); without one, each script runs as a subprocess with a timeout of
    its own timeouts plus :data:`ACTIVATOR_SLACK`, and ``start`` with
    :data:`ENGINE_START_ENV`. An injected runner decides the environment
    itself.
    """

    #: Each call runs its own script in its own subprocess: safe to run in parallel.
    parallel_safe = True

    def __init__(self, settings: Settings, runner: Runner | None = None) -> None:
        super().__init__(settings)
        self.runner = runner

    def _script(self, proc: DeployedProcess) -> str:
        rel = proc.extra.get("script") or f"etc/rc.d/init.d/{proc.name}"
        return os.path.join(proc.path, str(rel))

    def _timeout(self, proc: DeployedProcess, key: str, default: float) -> float:
        value = proc.extra.get(key, default)
        return float(value if isinstance(value, int | float) else default) + ACTIVATOR_SLACK

    def _execute(self, argv: Sequence[str], timeout: float,
                 env: Mapping[str, str] | None = None) -> CommandResult:
        if self.runner is not None:
            return self.runner(argv)
        return subprocess_runner(argv, env=None if env is None else {**os.environ, **env},
                                 timeout=timeout)

    def _run(self, proc: DeployedProcess, activity: str, timeout: float,
             env: Mapping[str, str] | None = None) -> None:
        argv = [self._script(proc), activity]
        result = self._execute(argv, timeout, env)
        if result.returncode == 0:
            return
        what = (f"did not finish within {timeout:.0f} s" if result.returncode == TIMED_OUT
                else f"failed with exit status {result.returncode}")
        tail = _activation.tail(result.output)
        raise DeployError(f"{proc.name}: '{' '.join(argv)}' {what}"
                          + (f":\n{tail}" if tail else ""))

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """``<script> start``; DeployError with the script's last output lines on failure.

        The script's own crash grace and readiness wait are turned off: the engine
        watches every started process concurrently (readiness check or grace time)
        instead of spending that time inside each script, one after another."""
        # The markers in the script's own environment, not only exported inside it:
        # the pid file names the forked child before it execs the program, and
        # /proc/PID/environ shows the environment of the last exec, so a check in
        # that window would find no marker and refuse a process that is ours.
        markers = {MARKER_DEPLOYMENT: deployment_id(self.settings), MARKER_PROCESS: proc.name}
        self._run(proc, "start", self._timeout(proc, "start_timeout", DEFAULT_START_TIMEOUT),
                  env={**ENGINE_START_ENV, **markers})

    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Stop ``proc`` (of its own generation).

        With the generated stop activity, the activator takes its steps itself
        (the stop signal to the process group the script would signal, SIGKILL after
        ``stop_timeout``, pid file removed) and returns a probe for the
        engine, so stopping a thousand processes costs no shell each and no
        worker waits. An overridden stop activity runs through the script.
        """
        if not proc.extra.get("native_stop"):
            # Stop waits up to stop_timeout for SIGTERM, then up to 5 s after SIGKILL.
            self._run(proc, "stop",
                      self._timeout(proc, "stop_timeout", DEFAULT_STOP_TIMEOUT) + KILL_WAIT)
            return None
        pid_file = str(proc.extra.get("pid_file") or proc.pid_file or "")
        verdict = pid_verdict(proc, self.settings, whole_line=True)
        if verdict.refused:
            return None  # reported; the pid file stays as evidence
        pid = verdict.pid
        if pid is None or not verdict.trusted:
            _remove(pid_file)
            return None
        try:
            target = -pid if os.getpgid(pid) == pid else pid
        except ProcessLookupError:
            _remove(pid_file)
            return None
        stop_signal = getattr(signal, f"SIG{proc.extra.get('stop_signal') or 'TERM'}",
                              signal.SIGTERM)
        _signal(target, stop_signal)
        timeout = float(proc.extra.get("stop_timeout") or DEFAULT_STOP_TIMEOUT)
        began = time.monotonic()
        killed: list[float] = []

        def probe() -> bool:
            # The whole group, when it was signalled: a child of the process (a
            # server under a wrapper, a user switch) may outlive it by a moment,
            # holding its port for the next generation's pre-flight.
            if not pid_alive(pid) and not (target < 0 and group_alive(-target, since=began)):
                _remove(pid_file)
                return True
            now = time.monotonic()
            if not killed and now - began > timeout:
                _signal(target, signal.SIGKILL)
                killed.append(now)
            elif killed and now - killed[0] > KILL_WAIT:
                raise DeployError(f"{proc.name}: pid {pid} survived SIGKILL")
            return False

        # Not asked here: the engine asks every new probe at once, on its own thread,
        # a round of them sharing one /proc scan for their groups (asked here, in
        # each worker, a process that died at once cost a scan of its own per stop).
        return probe

    def stops_at_once(self, proc: DeployedProcess) -> bool:
        """The generated stop activity is taken by :meth:`stop` itself, which signals
        and returns a probe; an overridden one runs the script and waits."""
        return bool(proc.extra.get("native_stop"))

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """Read the pid file here: no fork per process, cheap for ``status`` of many;
        the whole first line, as the script's ``read -r`` reads it. A process under
        the script's restart loop also has the loop's count of restarts."""
        st = pid_file_status(proc, self.settings, whole_line=True)
        counted = proc.extra.get("restarts_file")
        if st.running and isinstance(counted, str):
            return dataclasses.replace(st, restarts=read_count(counted))
        return st

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """Any activity through the script itself (with its own grace and readiness
        wait, as a user running it by hand gets); its output is passed on."""
        timeout = (self._timeout(proc, "start_timeout", DEFAULT_START_TIMEOUT)
                   + self._timeout(proc, "stop_timeout", DEFAULT_STOP_TIMEOUT) + KILL_WAIT)
        result = self._execute([self._script(proc), activity], timeout)
        if result.output:
            print(result.output, end="" if result.output.endswith("\n") else "\n")
        return result.returncode
