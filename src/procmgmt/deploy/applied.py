"""The engine's view of an activator that took a whole plan (``Activator.apply``).

A manager that diffs configurations itself (``supervisorctl update``,
``s6-rc-update``) stops and starts in one step. The engine still owes the
user what it does for every backend: the readiness checks (or the start
grace) of each started process, in dependency order, and the failure
message of one that dies. :class:`Applied` lets the engine's ordinary start
loop do that: starting a process the manager already started only marks
it started; every other call goes to the real activator.
"""

from __future__ import annotations

from collections.abc import Callable

from procmgmt.backends.base import Activator, LogSource, ProcessStatus
from procmgmt.manifest import DeployedProcess, Generation


class Applied(Activator):
    """``inner`` after its :meth:`~Activator.apply` started ``started`` itself."""

    def __init__(self, inner: Activator, started: set[str]) -> None:
        super().__init__(inner.settings)
        self.inner = inner
        self.started = started
        self.parallel_safe = inner.parallel_safe

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Nothing for what the manager started (the readiness wait follows); the
        real start for anything else (a kept process found not running)."""
        if proc.name in self.started:
            return None
        return self.inner.start(gen, proc)

    def starts_at_once(self, proc: DeployedProcess) -> bool:
        """What the manager started returns at once; anything else as the real one."""
        return proc.name in self.started or self.inner.starts_at_once(proc)

    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """The real stop."""
        return self.inner.stop(gen, proc)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """The real status."""
        return self.inner.status(gen, proc)

    def started_pids(self, gen: Generation, proc: DeployedProcess) -> list[int]:
        """The real activator's pids (readiness proves a listener is one of them)."""
        return self.inner.started_pids(gen, proc)

    def diagnose(self, gen: Generation, proc: DeployedProcess) -> str:
        """The real activator's diagnosis of a process that died."""
        return self.inner.diagnose(gen, proc)

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """Where the real manager keeps the output."""
        return self.inner.log_source(gen, proc)
