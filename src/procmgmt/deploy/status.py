"""What ``procmgmt status`` reports: per process its state, PID, uptime, restart
policy, liveness check and log.

States: ``running``; ``stopped by hand`` (``procmgmt stop``, recorded in
:mod:`procmgmt.deploy.handstop`); ``down`` (not running although nothing asked
for it: crashed, killed, or never came up). For the exit status a process
stopped by hand counts as not up, as ``systemctl is-active`` counts an inactive
unit and an LSB ``status`` a stopped service: 0 only when every process runs,
3 otherwise.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from procmgmt.backends import get_backend
from procmgmt.backends.base import Activator
from procmgmt.deploy import handstop
from procmgmt.manifest import Generation
from procmgmt.pids import started_at
from procmgmt.readiness import Liveness
from procmgmt.settings import Settings

RUNNING = "running"
STOPPED_BY_HAND = "stopped by hand"
DOWN = "down"


@dataclass(frozen=True)
class Row:
    """One process's status."""

    name: str
    state: str
    pid: int | None
    #: When the process started (seconds since the epoch), None when not running.
    started_at: float | None
    #: Where its output is: log files, or a ``journalctl`` command.
    log: tuple[str, ...]
    #: The manager's own words (supervisord's state, "no pid in ...").
    detail: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The restart policy in force: the model's, else the backend's default
    #: (None: the backend starts nothing by itself).
    restart: str | None = None
    #: The liveness check, described ("tcp 127.0.0.1:80 every 10 s, ..."), or None.
    liveness: str | None = None
    #: Restarts by the restart policy where the manager counts them, else None.
    restarts: int | None = None

    def uptime(self, now: float | None = None) -> float | None:
        """Seconds since it started (None when not running)."""
        if self.started_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.started_at)

    def to_json(self) -> dict[str, Any]:
        """The row as ``status --json`` prints it."""
        return {"name": self.name, "state": self.state, "running": self.state == RUNNING,
                "pid": self.pid,
                "started_at": None if self.started_at is None else round(self.started_at, 2),
                "log": list(self.log), "detail": self.detail, "metadata": self.metadata,
                "restart": self.restart, "restarts": self.restarts,
                "liveness": self.liveness}


def rows(settings: Settings, gen: Generation, act: Activator) -> list[Row]:
    """The status of every process of ``gen``, in start order."""
    held = handstop.held(settings, gen)
    default_restart = get_backend(gen.backend).capabilities.lifecycle.default_restart
    out = []
    for p in gen.processes:
        st = act.status(gen, p)
        state = RUNNING if st.running else STOPPED_BY_HAND if p.name in held else DOWN
        pid = st.pid if st.running else None
        source = act.log_source(gen, p)
        log = source.files or ((f"journalctl {' '.join(source.journal)}",)
                               if source.journal else ())
        live = Liveness.from_json(p.liveness) if p.liveness else None
        out.append(Row(p.name, state, pid, started_at(pid) if pid else None, log, st.detail,
                       dict(p.metadata), restart=p.restart or default_restart,
                       liveness=live.describe() if live is not None else None,
                       restarts=st.restarts if st.running else None))
    return out


def plural(count: int, word: str, words: str | None = None) -> str:
    """``1 process``, ``2 processes``."""
    return f"{count} {word if count == 1 else (words or word + 's')}"


def summary(rows: list[Row]) -> str:
    """``3 processes, 1 up, 1 stopped by hand, 1 down`` (zero counts after 'up' left out)."""
    parts = [plural(len(rows), "process", "processes"),
             f"{sum(r.state == RUNNING for r in rows)} up"]
    for state in (STOPPED_BY_HAND, DOWN):
        n = sum(r.state == state for r in rows)
        if n:
            parts.append(f"{n} {state}")
    return ", ".join(parts)


def exit_status(rows: list[Row], manager_problems: Sequence[str] = ()) -> int:
    """0 when every process runs under a healthy manager, 3 otherwise (stopped by
    hand included; a dead scanner too: a monitoring check must notice it)."""
    return 0 if all(r.state == RUNNING for r in rows) and not manager_problems else 3


def duration(seconds: float) -> str:
    """``45s``, ``2m05s``, ``1h02m``, ``3d04h``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
