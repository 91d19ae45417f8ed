"""One instance of every catalogue service (used by test_catalogue.py).

``extra_params``: ``port_base`` (each service listens on ``port_base`` +
its offset), optionally ``services`` (a list: deploy only those) and
``pg_config`` (extra postgresql.conf entries: a changed value restarts
PostgreSQL on the next switch).
"""

from __future__ import annotations

from procmgmt import Instance, Process, Settings
from procmgmt.services.apache import simple_webapp_apache
from procmgmt.services.mariadb import mariadb, mariadb_metadata
from procmgmt.services.memcached import memcached
from procmgmt.services.nginx import simple_webapp_nginx
from procmgmt.services.postgresql import postgresql, postgresql_metadata
from procmgmt.services.redis import redis
from procmgmt.services.s6_svscan import s6_svscan
from procmgmt.services.supervisord import supervisord

OFFSETS = {"postgresql": 0, "redis": 1, "mariadb": 2, "memcached": 3, "nginx": 4, "apache": 5,
           "supervisord": 6}


def processes(settings: Settings) -> dict[str, Instance]:
    base = int(settings.extra_params["port_base"])
    wanted = settings.extra_params.get("services")
    # A suffix keeps the instance (and, as root, account) names apart from
    # the accounts Debian's packages create (redis, memcache...).
    sfx = str(settings.extra_params.get("suffix", "t"))
    port = {name: base + offset for name, offset in OFFSETS.items()}
    pg_config = {"fsync": False, "max_connections": 20, "shared_buffers": "16MB",
                 **settings.extra_params.get("pg_config", {})}
    kw = {name: {"instance_suffix": sfx, "port": port[name]} for name in port}
    made: dict[str, tuple[Process, dict[str, object]]] = {
        "postgresql": (postgresql(settings)(**kw["postgresql"], config=pg_config),
                       postgresql_metadata(settings, **kw["postgresql"])),
        "redis": (redis(settings)(**kw["redis"], config={"maxmemory": "16mb"}),
                  {"port": port["redis"]}),
        "mariadb": (mariadb(settings)(**kw["mariadb"],
                                      options={"innodb_buffer_pool_size": "16M",
                                               "innodb_log_file_size": "4M"}),
                    mariadb_metadata(settings, **kw["mariadb"])),
        "memcached": (memcached(settings)(**kw["memcached"], memory_mb=16),
                      {"port": port["memcached"]}),
        "nginx": (simple_webapp_nginx(settings)(**kw["nginx"]), {"port": port["nginx"]}),
        "apache": (simple_webapp_apache(settings)(**kw["apache"]), {"port": port["apache"]}),
        "supervisord": (supervisord(settings)(**kw["supervisord"]),
                        {"port": port["supervisord"]}),
        "s6-svscan": (s6_svscan(settings)(instance_suffix=sfx), {}),
    }
    return {f"{name}{sfx}": Instance(proc, **meta) for name, (proc, meta) in made.items()
            if wanted is None or name in wanted}
