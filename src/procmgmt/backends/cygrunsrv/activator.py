r"""cygrunsrv activation.

**Activation** (:class:`CygrunsrvActivator`) really runs ``cygrunsrv``
(the original only echoed the install command): start is ``--query`` (is it
installed?), ``--install NAME <params>`` (with ``@ENTRY@`` replaced),
``--start NAME`` (cygrunsrv waits until the service runs) and ``--query``
again for the status; a service found installed but stopped is
``--remove``\ d first so the new params count. Stop is ``--stop`` then
``--remove``. The engine calls them in dependency order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

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
from procmgmt.backends.cygrunsrv.params import DEFAULT_PREFIX, ENTRY, service_name
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

CYGRUNSRV = "cygrunsrv"


def parse_query(output: str) -> dict[str, str]:
    """``cygrunsrv --query`` output (``Key   : value`` lines) as a dict."""
    facts: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            facts.setdefault(key.strip(), value.strip())
    return facts


class CygrunsrvActivator(Activator):
    """Installs, starts, stops and removes services with cygrunsrv.

    Every command goes through ``runner``; the default runs the executable
    named by ``$PROCMGMT_CYGRUNSRV`` (default ``cygrunsrv`` from PATH).
    """

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings)
        env = os.environ if environ is None else environ
        self.program = env.get("PROCMGMT_CYGRUNSRV") or CYGRUNSRV
        self.runner: Runner = runner or subprocess_runner

    def required_tools(self, gen: Generation) -> list[Tool]:
        """cygrunsrv (unless a runner stands in for it)."""
        if self.runner is not subprocess_runner:
            return []
        return [Tool("cygrunsrv", self.program, "the cygrunsrv backend deploys on Cygwin "
                     "(PROCMGMT_CYGRUNSRV names another executable); on this machine deploy "
                     "with another process manager (-P)")]

    def service(self, proc: DeployedProcess) -> str:
        """The service name recorded at build time."""
        return str(proc.extra.get("service") or service_name(proc.name, DEFAULT_PREFIX))

    def params(self, proc: DeployedProcess) -> list[str]:
        """The install params with ``@ENTRY@`` replaced by the store entry."""
        path = os.path.join(proc.path, str(proc.extra.get("params")))
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except (OSError, ValueError) as exc:
            raise DeployError(f"{proc.name}: cannot read the cygrunsrv params {path}: "
                              f"{exc}") from None
        return [str(p).replace(ENTRY, proc.path) for p in doc["params"]]

    def _run(self, proc: DeployedProcess, *args: str, check: bool = True) -> CommandResult:
        argv = [self.program, *args]
        result = self.runner(argv)
        if check and result.returncode != 0:
            shown = " ".join(argv[:3]) + (" ..." if len(argv) > 3 else "")
            raise DeployError(f"{proc.name}: '{shown}' failed (exit status "
                              f"{result.returncode}): {result.output.strip()}")
        return result

    def _query(self, proc: DeployedProcess) -> dict[str, str] | None:
        """The service's query facts, or None when it is not installed."""
        result = self._run(proc, "--query", self.service(proc), check=False)
        return parse_query(result.output) if result.returncode == 0 else None

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """Install (unless running already) and start; check that it runs."""
        name = self.service(proc)
        facts = self._query(proc)
        if facts is not None and facts.get("Current State") == "Running":
            return
        if facts is not None:
            self._run(proc, "--remove", name)
        self._run(proc, "--install", name, *self.params(proc))
        self._run(proc, "--start", name)
        st = self.status(gen, proc)
        if not st.running:
            raise DeployError(f"{proc.name}: cygrunsrv started {name} but it is {st.detail}")

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``--stop`` and ``--remove``; a service that is not installed is done."""
        name = self.service(proc)
        if self._run(proc, "--stop", name, check=False).returncode != 0:
            if self._query(proc) is None:
                return
            self._run(proc, "--stop", name)
        self._run(proc, "--remove", name)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """``--query``'s Current State; the pid from the pid file when it is live."""
        facts = self._query(proc)
        if facts is None:
            return ProcessStatus(proc.name, False, detail="not installed")
        state = facts.get("Current State", "unknown")
        verdict = pid_verdict(proc, self.settings)
        pid = verdict.pid if verdict.trusted else None
        return ProcessStatus(proc.name, state == "Running", pid, state)
