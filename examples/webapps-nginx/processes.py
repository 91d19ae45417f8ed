"""A webapp behind nginx: ``Host: webapp.local`` on the nginx port reaches the webapp.

Ports move with ``--extra-params '{"port_base": N}'``: the webapp listens on
N, nginx on N+80 (tests use high free ports). nginx depends on the webapp,
so every process manager starts the webapp first.
"""

from __future__ import annotations

from constructors import nginx_reverse_proxy_host_based, webapp

from procmgmt import Instance, Settings


def processes(settings: Settings) -> dict[str, Instance]:
    base = int(settings.extra_params.get("port_base", 5000))
    web = Instance(webapp(settings)(port=base), port=base, dns_name="webapp.local")
    proxy = nginx_reverse_proxy_host_based(settings)(port=base + 80, webapps=[web])
    return {
        "webapp": web,
        "nginx": Instance(proxy, port=base + 80),
    }
