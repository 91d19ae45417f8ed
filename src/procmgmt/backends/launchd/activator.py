"""launchd activation (:class:`LaunchdActivator`, for macOS; on Linux only with an
injected runner).

The plist is copied into ``$PROCMGMT_LAUNCHD_TARGET_DIR``
(default ``/Library/LaunchDaemons`` as root, ``~/Library/LaunchAgents``
otherwise), then ``launchctl enable <domain>/<label>``, ``launchctl
bootstrap <domain> <plist>`` and ``launchctl kickstart <domain>/<label>``;
the domain is ``system`` as root, ``gui/<uid>`` otherwise. ``enable`` comes
first because ``bootstrap`` refuses a service that was once disabled
(launchd remembers that outside the plist). Stop: ``launchctl bootout
<domain>/<label>`` and the copy is removed. Status parses ``launchctl print
<domain>/<label>``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping

from procmgmt import fsutil
from procmgmt.backends._activation import (
    CommandResult,
    Runner,
    pid_verdict,
    subprocess_runner,
)
from procmgmt.backends.base import (
    Activator,
    ProcessStatus,
    Tool,
)
from procmgmt.backends.launchd.plist import AGENTS_DIR, DAEMONS_DIR, DEFAULT_PREFIX, label_of
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: Seconds the activator waits for a started job to run.
DEFAULT_START_TIMEOUT = 10.0
LAUNCHCTL = "launchctl"


def parse_print(output: str) -> dict[str, str]:
    """The top-level ``key = value`` lines of ``launchctl print <service>``.

    The output is a nested, indented text block (``{ ... }`` sections such
    as ``environment = {``); only the service's own first-level keys are
    taken (``state``, ``pid``, ``last exit code``, ``path``...).
    """
    facts: dict[str, str] = {}
    depth = 0
    for raw in output.splitlines():
        line = raw.strip()
        if line.endswith("{"):
            depth += 1
            if depth == 1:
                continue
        if line == "}":
            depth -= 1
            continue
        if depth == 1 and " = " in line:
            key, _, value = line.partition(" = ")
            facts.setdefault(key.strip(), value.strip())
    return facts


class LaunchdActivator(Activator):
    """Copies plists into the target dir and drives them with launchctl.

    Every command goes through ``runner`` (tests record the plan and answer
    ``print`` with canned output).
    """

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 environ: Mapping[str, str] | None = None, uid: int | None = None,
                 start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        super().__init__(settings)
        env = os.environ if environ is None else environ
        self.runner: Runner = runner or subprocess_runner
        self.uid = os.getuid() if uid is None else uid
        home = env.get("HOME") or os.path.expanduser("~")
        default_dir = ("/" + DAEMONS_DIR if self.uid == 0
                       else os.path.join(home, AGENTS_DIR))
        self.target_dir = env.get("PROCMGMT_LAUNCHD_TARGET_DIR") or default_dir
        self.domain = "system" if self.uid == 0 else f"gui/{self.uid}"
        self.start_timeout = start_timeout

    def required_tools(self, gen: Generation) -> list[Tool]:
        """launchctl (unless a runner stands in for it)."""
        if self.runner is not subprocess_runner:
            return []
        return [Tool("launchctl", LAUNCHCTL, "the launchd backend deploys on macOS; on this "
                     "machine deploy with another process manager (-P)")]

    def label(self, proc: DeployedProcess) -> str:
        """The job label recorded at build time."""
        return str(proc.extra.get("label") or label_of(proc.name, DEFAULT_PREFIX))

    def service(self, proc: DeployedProcess) -> str:
        """``<domain>/<label>``: launchctl's service target."""
        return f"{self.domain}/{self.label(proc)}"

    def installed_plist(self, proc: DeployedProcess) -> str:
        """The copy in the target dir."""
        return os.path.join(self.target_dir, f"{self.label(proc)}.plist")

    def _run(self, proc: DeployedProcess, *args: str, check: bool = True) -> CommandResult:
        argv = [LAUNCHCTL, *args]
        result = self.runner(argv)
        if check and result.returncode != 0:
            tail = result.output.strip()
            raise DeployError(f"{proc.name}: '{' '.join(argv)}' failed (exit status "
                              f"{result.returncode})" + (f": {tail}" if tail else ""))
        return result

    def _copy(self, proc: DeployedProcess) -> str:
        """Copy the store plist into the target dir atomically (0644)."""
        source = os.path.join(proc.path, str(proc.extra.get("plist")))
        target = self.installed_plist(proc)
        fsutil.ensure_dir(self.target_dir)
        with open(source, "rb") as f:
            data = f.read()
        fd, tmp = tempfile.mkstemp(prefix=".procmgmt-", dir=self.target_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return target

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """Copy, (bootout a stale load of the label), enable, bootstrap, kickstart;
        then wait until launchctl reports it running."""
        target = self._copy(proc)
        if self._run(proc, "print", self.service(proc), check=False).returncode == 0:
            # Loaded already (an interrupted switch): reload so our plist counts.
            self._run(proc, "bootout", self.service(proc))
        self._run(proc, "enable", self.service(proc))
        self._run(proc, "bootstrap", self.domain, target)
        self._run(proc, "kickstart", self.service(proc))
        deadline = time.monotonic() + self.start_timeout
        while True:
            st = self.status(gen, proc)
            if st.running:
                return
            if time.monotonic() >= deadline:
                raise DeployError(f"{proc.name}: launchd did not run {self.label(proc)} "
                                  f"within {self.start_timeout:g} s ({st.detail})")
            time.sleep(0.05)

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``bootout`` (launchd sends SIGTERM, then SIGKILL after ExitTimeOut) and
        remove the copy; a job that is not loaded is stopped already."""
        result = self._run(proc, "bootout", self.service(proc), check=False)
        if result.returncode != 0 and self.status(gen, proc).running:
            raise DeployError(f"{proc.name}: 'launchctl bootout {self.service(proc)}' failed "
                              f"(exit status {result.returncode}): {result.output.strip()}")
        copy = self.installed_plist(proc)
        if os.path.exists(copy):
            os.unlink(copy)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """``launchctl print``: state and pid; the daemon's pid (from its pid file)
        in the detail for a proxied process."""
        result = self._run(proc, "print", self.service(proc), check=False)
        if result.returncode != 0:
            return ProcessStatus(proc.name, False, detail="not loaded")
        facts = parse_print(result.output)
        state = facts.get("state", "unknown")
        pid_text = facts.get("pid", "")
        pid = int(pid_text) if pid_text.isdigit() else None
        detail = state
        if proc.extra.get("proxy") and proc.pid_file:
            verdict = pid_verdict(proc, self.settings)
            if verdict.trusted:
                detail += f" (program pid {verdict.pid})"
            elif verdict.refused:
                detail += f" ({verdict.detail})"
        return ProcessStatus(proc.name, state == "running" and pid is not None, pid, detail)
