"""Two webapps whose ports, uids and gids come from the ID assigner.

Instead of hard-coding ports, each instance declares the pools it needs
(``requires_unique_ids_for``) and reads its port from ``settings.ids``.
``lookup`` returns 0 for an instance without a port yet, so the model
evaluates before the first assignment::

    procmgmt id-assign --id-resources idresources.json processes-ids.py > ids.json
    # later, after editing the model (keeps existing ports, adds new ones):
    procmgmt id-assign --id-resources idresources.json --ids ids.json \\
        --output-file ids.json processes-ids.py

The users and groups the constructor creates are named after the instance,
so the uids and gids assigned to the instance become theirs.
"""

from __future__ import annotations

from constructors import webapp

from procmgmt import Instance, Settings
from procmgmt.ids import lookup

RESOURCES = ["webapp_ports", "uids", "gids"]


def processes(settings: Settings) -> dict[str, Instance]:
    make_webapp = webapp(settings)
    instances = {}
    for name in ("webapp1", "webapp2"):
        port = lookup(settings, "webapp_ports", name)
        instances[name] = Instance(make_webapp(port=port, instance_name=name),
                                   requires_unique_ids_for=RESOURCES,
                                   port=port, dns_name=f"{name}.local")
    return instances
