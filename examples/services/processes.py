"""The service catalogue in one deployment: two PostgreSQL servers, Redis, MariaDB,
nginx and Apache, every port from the ID assigner.

Each instance declares the ``service_ports`` pool (``idresources.json``)
and reads its port back from ``settings.ids``::

    procmgmt switch --assign-ids --id-resources idresources.json --ids ids.json processes.py

Without an ids file, ``lookup`` falls back to ``port_base + offset``
(``--extra-params '{"port_base": 47000}'``; default 7000), so the model
also deploys on its own. See README.md.
"""

from __future__ import annotations

from procmgmt import Instance, Settings
from procmgmt.ids import lookup
from procmgmt.services.apache import simple_webapp_apache
from procmgmt.services.mariadb import mariadb, mariadb_metadata
from procmgmt.services.nginx import simple_webapp_nginx
from procmgmt.services.postgresql import postgresql, postgresql_metadata
from procmgmt.services.redis import redis, redis_metadata

PORTS = "service_ports"
#: Instance name -> offset from port_base when no ID was assigned yet.
OFFSETS = {"postgresql1": 0, "postgresql2": 1, "redis": 2, "mariadb": 3, "nginx": 4,
           "apache": 5}


def processes(settings: Settings) -> dict[str, Instance]:
    base = int(settings.extra_params.get("port_base", 7000))

    def port(name: str) -> int:
        return lookup(settings, PORTS, name, default=base + OFFSETS[name])

    pg = postgresql(settings)
    instances = {
        name: Instance(
            pg(port=port(name), instance_name=name,
               config={"max_connections": 20, "shared_buffers": "16MB"}),
            requires_unique_ids_for=[PORTS],
            **postgresql_metadata(settings, port=port(name), instance_name=name))
        for name in ("postgresql1", "postgresql2")
    }
    instances["redis"] = Instance(
        redis(settings)(port=port("redis"), config={"maxmemory": "32mb"}),
        requires_unique_ids_for=[PORTS], **redis_metadata(settings, port=port("redis")))
    instances["mariadb"] = Instance(
        mariadb(settings)(port=port("mariadb"),
                          options={"innodb_buffer_pool_size": "32M", "max_connections": 20}),
        requires_unique_ids_for=[PORTS], **mariadb_metadata(settings, port=port("mariadb")))
    instances["nginx"] = Instance(
        simple_webapp_nginx(settings)(port=port("nginx")),
        requires_unique_ids_for=[PORTS], port=port("nginx"))
    instances["apache"] = Instance(
        simple_webapp_apache(settings)(port=port("apache")),
        requires_unique_ids_for=[PORTS], port=port("apache"))
    return instances
