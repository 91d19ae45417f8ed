"""Two instances of one catalogue service, side by side (used by test_databases.py).

``extra_params``: ``service`` (postgresql, redis, mariadb or memcached),
``port_base`` (instance N listens on port_base + N - 1) and optionally
``mode`` (foreground or daemon; default: the process manager's choice).
"""

from __future__ import annotations

from typing import Any

from procmgmt import Instance, Settings
from procmgmt.services.mariadb import mariadb, mariadb_metadata
from procmgmt.services.memcached import memcached, memcached_metadata
from procmgmt.services.postgresql import postgresql, postgresql_metadata
from procmgmt.services.redis import redis, redis_metadata


def processes(settings: Settings) -> dict[str, Instance]:
    service = settings.extra_params["service"]
    base = int(settings.extra_params["port_base"])
    mode = settings.extra_params.get("mode")
    instances = {}
    for n in (1, 2):
        port, suffix = base + n - 1, str(n)
        kw: dict[str, Any] = {"port": port, "instance_suffix": suffix}
        if service == "postgresql":
            proc = postgresql(settings)(**kw, mode=mode,
                                        config={"fsync": False, "max_connections": 20,
                                                "shared_buffers": "16MB",
                                                "procmgmt.test": "it's \\ quoted"})
            meta = postgresql_metadata(settings, **kw)
        elif service == "redis":
            proc = redis(settings)(**kw, mode=mode,
                                   config={"maxmemory": "16mb", "databases": 4})
            meta = redis_metadata(settings, **kw)
        elif service == "mariadb":
            proc = mariadb(settings)(**kw, options={"innodb_buffer_pool_size": "16M",
                                                    "innodb_log_file_size": "4M",
                                                    "max_connections": 20})
            meta = mariadb_metadata(settings, **kw)
        elif service == "memcached":
            proc = memcached(settings)(**kw, mode=mode, memory_mb=16, max_connections=64)
            meta = memcached_metadata(settings, **kw)
        else:
            raise ValueError(f"unknown service {service!r}")
        instances[f"{service}{suffix}"] = Instance(proc, **meta)
    return instances
