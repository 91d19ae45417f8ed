"""Three cheap processes for the deploy/upgrade/rollback/undeploy cycles.

``alpha`` appends a line to ``<lib dir>/cycles/alpha.log`` each time it
starts (data in a state directory that undeploy, rollback and gc must never
delete), ``beta`` depends on it, and ``gamma`` changes with
``extra_params["variant"]`` (its sleep argument), so an upgrade restarts
``gamma`` only and a rollback restarts it again.
"""

from __future__ import annotations

import os

from procmgmt import Instance, Process, Settings


def processes(settings: Settings) -> dict[str, Instance]:
    variant = int(settings.extra_params.get("variant", 0))
    data = os.path.join(settings.lib_dir, "cycles")
    alpha = Process(
        name="alpha", foreground_process="/bin/sh",
        foreground_process_args=["-c", 'mkdir -p "$DATA" && echo started >> "$DATA/alpha.log" '
                                       "&& exec sleep 3600"],
        environment={"DATA": data})
    beta = Process(name="beta", foreground_process="/bin/sleep",
                   foreground_process_args=["3601"], dependencies=[alpha])
    gamma = Process(name="gamma", foreground_process="/bin/sleep",
                    foreground_process_args=[str(10000 + variant)])
    return {"alpha": Instance(alpha), "beta": Instance(beta), "gamma": Instance(gamma)}
