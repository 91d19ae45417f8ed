"""s6-svscan as a managed process: an s6 supervision tree run by another process manager.

An instance (``s6-svscan``, ``s6-svscan2``...) scans
``<runtime_dir>/<instance>/service``: a service directory with an executable
``run`` appearing there is picked up at the next scan (``s6-svscanctl -a
<scan dir>`` forces one) and supervised by its own ``s6-supervise``. The scan
dir is in the runtime dir, as the original put it: a supervision tree is
run-time state, and stale ``supervise/`` dirs must not survive a reboot.

s6-svscan only runs in the foreground; a process manager that wants daemons
(sysvinit) daemonizes it. ``-c`` (the most services it will supervise) is set
explicitly and generously: past it, new service directories are silently
ignored. Readiness is ``s6-svscanctl -z`` succeeding, which needs s6-svscan to
be reading its control FIFO (``-z`` only reaps zombies, so it changes nothing).

s6-svscan runs as the deployer: as root it is what lets services drop to
their own users (``s6-setuidgid`` in a ``run`` script).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from procmgmt.model.process import Process
from procmgmt.readiness import Command, Readiness
from procmgmt.services._common import find_program, instance_dirs, instance_name
from procmgmt.services._snippets import make_dirs
from procmgmt.settings import Settings

#: Services one instance supervises at most (s6-svscan ``-c``).
DEFAULT_MAX_SERVICES = 1000


@dataclass(frozen=True)
class S6Paths:
    """Where one s6-svscan instance keeps its files."""

    name: str
    scan_dir: str
    log_dir: str


def paths(settings: Settings, name: str) -> S6Paths:
    """The paths of instance ``name``."""
    dirs = instance_dirs(settings, name)
    return S6Paths(name=name, scan_dir=os.path.join(dirs.runtime, "service"), log_dir=dirs.log)


def s6_program(name: str) -> str:
    """An s6 tool by absolute path when installed (Debian: /usr/bin)."""
    return find_program(f"/usr/bin/{name}", name)


def s6_svscan(settings: Settings) -> Callable[..., Process]:
    """s6-svscan over the instance's scan dir."""

    def instance(
        *,
        instance_suffix: str = "",
        instance_name: str | None = None,
        max_services: int = DEFAULT_MAX_SERVICES,
        dependencies: Sequence[Process] = (),
        readiness: Readiness | None = None,
    ) -> Process:
        if max_services < 2:
            raise ValueError("s6-svscan needs max_services >= 2")
        name = instance_name_of(instance_suffix, instance_name)
        p = paths(settings, name)
        check = readiness or Command(command=[s6_program("s6-svscanctl"), "-z", p.scan_dir],
                                     interval=0.05)
        return Process(
            name=name,
            instance_name=name,
            description=f"s6-svscan {name}",
            initialize=make_dirs(p.scan_dir, p.log_dir, mode="0755"),
            foreground_process=s6_program("s6-svscan"),
            foreground_process_args=["-c", str(max_services), p.scan_dir],
            daemon=None,
            dependencies=list(dependencies),
            readiness=check,
            # SIGTERM is ``s6-svscanctl -t``: "send a SIGTERM to all the s6-supervise
            # processes supervising a service and a SIGHUP to [those] supervising a
            # logger", wait for them, then exit: every service goes down cleanly and
            # no log is lost (s6 docs, s6-svscan "Signals" and s6-svscanctl).
            stop_signal="TERM",
        )

    return instance


def instance_name_of(instance_suffix: str = "", name: str | None = None) -> str:
    """The instance name: ``s6-svscan<suffix>`` unless given."""
    return instance_name("s6-svscan", instance_suffix, name)
