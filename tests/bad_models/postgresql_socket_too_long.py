# expect: postgresql_socket_too_long\.py:\d+  db\.socket: unix socket path is 1[1-9]\d bytes
# expect: longer than the 107-byte limit
# expect: use a shorter --runtime-dir or instance name
"""A PostgreSQL instance whose socket (<runtime>/<instance>/.s.PGSQL.<port>) cannot exist.

The instance name alone is 95 bytes, so the path is too long under any
runtime dir; the catalogue's metadata helper reports the socket path and
validation refuses the model before anything is started.
"""

from procmgmt import Instance
from procmgmt.services.postgresql import postgresql, postgresql_metadata

NAME = "pg" + "x" * 93


def processes(settings):
    pg = postgresql(settings)
    return {"db": Instance(pg(port=5432, instance_name=NAME),
                           **postgresql_metadata(settings, port=5432, instance_name=NAME))}
