"""How a switch activates: the engine's options and their defaults.

A module of its own, without the engine's imports, so the command line can
show the defaults in ``--help`` (and check ``--max-parallel``) without loading
the engine, the backends and the readiness checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: Processes started or stopped at once by default: enough to overlap slow
#: starts, few enough not to swamp a small machine.
DEFAULT_MAX_PARALLEL = min(32, 4 * (os.cpu_count() or 1))


@dataclass(frozen=True)
class Options:
    """How the engine activates; fixed for the engine's lifetime."""

    max_parallel: int = DEFAULT_MAX_PARALLEL
    rollback_on_failure: bool = True
    #: Wait for a profile lock held by another switch (False: fail at once).
    wait_for_lock: bool = True
    #: Without a readiness check, a process counts as ready once it is still
    #: alive this many seconds after it started.
    start_grace: float = 0.2
    #: Probe declared readiness checks (off only where nothing really runs: command
    #: plans recorded against a fake manager).
    readiness_checks: bool = True
