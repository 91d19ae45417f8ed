"""Constructors of the webapps example: one function per kind of service.

A constructor takes the shared settings and returns a function of instance
parameters. Everything that would conflict between instances (pid file,
user, group) derives from the instance name; the port is a parameter.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from procmgmt import Credentials, Group, Process, Settings, User
from procmgmt.readiness import TCP

WEBAPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "webapp.py")


def webapp(settings: Settings) -> Callable[..., Process]:
    """The test webapp; ``extra_params["webapp_mode"]`` picks foreground, daemon or auto."""
    mode = settings.extra_params.get("webapp_mode")

    def instance(
        port: int,
        instance_suffix: str = "",
        instance_name: str | None = None,
        dependencies: Sequence[Process] = (),
    ) -> Process:
        name = instance_name or f"webapp{instance_suffix}"
        # Same rule the backends use for derived pid files: a process that
        # switches user keeps its pid file in a directory of its own, which
        # only it (and root) can write.
        pid_file = settings.pid_file(name)
        common = {
            "name": name,
            "instance_name": name,
            "description": f"Test webapp {name}",
            "pid_file": pid_file,
            "environment": {"PORT": str(port), "INSTANCE_NAME": name, "PID_FILE": pid_file},
            "user": name,
            "dependencies": dependencies,
            # Started is not ready: dependents wait until the port accepts.
            "readiness": TCP(port=port, timeout=30),
            "credentials": Credentials(
                groups={name: Group()},
                users={name: User(group=name, description=f"Test webapp {name}")},
            ),
        }
        if mode == "foreground":
            return Process(foreground_process=sys.executable, foreground_process_args=[WEBAPP],
                           daemon=None, **common)
        if mode == "daemon":
            return Process(daemon=sys.executable, daemon_args=[WEBAPP, "-D"],
                           foreground_process=None, **common)
        return Process(process=sys.executable, args=[WEBAPP], daemon_extra_args=["-D"], **common)

    return instance
