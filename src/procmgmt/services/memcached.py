"""memcached on 127.0.0.1 (no UDP): foreground, or ``-d -P <pid file>`` as a daemon.

::

    from procmgmt import Instance
    from procmgmt.services.memcached import memcached, memcached_metadata

    def processes(settings):
        make = memcached(settings)
        return {"memcached": Instance(make(port=11211, memory_mb=32),
                                      **memcached_metadata(settings, port=11211))}

memcached keeps no state: the only per-instance path is the daemon mode pid
file ``<runtime_dir>/<instance>/memcached.pid`` (written after the server
dropped to its user, so that directory belongs to the user).

As root memcached refuses to start without ``-u``: a privileged instance
starts as root and drops to its own user with ``-u <instance>``; a root
deployment with user changes disabled passes ``-u root``. An unprivileged
deployment passes no ``-u``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from procmgmt.model.process import Process
from procmgmt.readiness import TCP, Readiness
from procmgmt.services import _common
from procmgmt.services._snippets import check_mode, make_dirs
from procmgmt.settings import Settings

KIND = "memcached"


def run_as(settings: Settings, name: str) -> str | None:
    """The ``-u`` memcached needs: the instance user as root, root when root deploys
    with user changes disabled, else none."""
    user = _common.service_user(settings, name)
    if user:
        return user
    return "root" if settings.calling_user == "root" else None


def memcached_metadata(settings: Settings, port: int, instance_suffix: str = "",
                       instance_name: str | None = None) -> dict[str, Any]:
    """Instance metadata: ``port`` (checked for sharing between instances)."""
    del settings, instance_suffix, instance_name  # same signature as the other services
    return {"port": port}


def memcached(settings: Settings) -> Callable[..., Process]:
    """Constructor: ``memcached(settings)(port=..., ...)`` is one memcached server."""

    def instance(
        port: int = 11211,
        instance_suffix: str = "",
        instance_name: str | None = None,
        memory_mb: int = 64,
        max_connections: int = 1024,
        extra_args: Sequence[str] = (),
        mode: str | None = None,
        dependencies: Sequence[Process] = (),
        readiness: Readiness | None = None,
        program: str | None = None,
    ) -> Process:
        """One memcached on 127.0.0.1:``port``, TCP only (``-U 0``).

        ``mode`` is None (the process manager picks), ``"foreground"`` or
        ``"daemon"``; ``extra_args`` are appended to the command line.
        """
        check_mode(mode)
        name = _common.instance_name(KIND, instance_suffix, instance_name)
        dirs = _common.instance_dirs(settings, name)
        owner = _common.service_user(settings, name)
        user = run_as(settings, name)
        server = program or _common.find_program("memcached", "/usr/bin/memcached")
        pid_file = os.path.join(dirs.runtime, "memcached.pid")
        args = ["-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", str(memory_mb),
                "-c", str(max_connections), *(["-u", user] if user else []), *extra_args]
        return Process(
            name=name,
            instance_name=name,
            description=f"memcached {name}",
            initialize=make_dirs(dirs.runtime, owner=owner, mode="0755"),
            foreground_process=None if mode == "daemon" else server,
            foreground_process_args=args,
            daemon=None if mode == "foreground" else server,
            daemon_args=[*args, "-d", "-P", pid_file],
            pid_file=None if mode == "foreground" else pid_file,
            credentials=_common.service_credentials(settings, name,
                                                    description=f"memcached {name}"),
            dependencies=dependencies,
            readiness=readiness if readiness is not None else TCP(port=port),
            # SIGTERM and SIGINT end memcached at once, which is all a cache needs;
            # its graceful SIGUSR1 only matters for a warm restart (-e), not used here
            # (memcached's protocol.txt / ChangeLog 1.5.x: "graceful stop: SIGUSR1").
            stop_signal="TERM",
        )

    return instance
