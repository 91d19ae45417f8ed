"""Six webapps behind two nginx instances, each webapp reached by its own host name.

webappN listens on ``port_base + N`` and is known as ``webappN.local``;
``nginx`` (port_base + 80) proxies webapp1-4 and ``nginx2`` (port_base + 81)
webapp5-6. Any other host name gets 404 from the nginx it reached.
Switching from ``processes.py`` stops ``webapp``, restarts ``nginx`` with its
new configuration and starts the rest, webapps before their nginx.
"""

from __future__ import annotations

from constructors import nginx_reverse_proxy_host_based, webapp

from procmgmt import Instance, Settings


def processes(settings: Settings) -> dict[str, Instance]:
    base = int(settings.extra_params.get("port_base", 5000))
    make_webapp = webapp(settings)
    make_proxy = nginx_reverse_proxy_host_based(settings)
    webapps = {
        f"webapp{i}": Instance(make_webapp(port=base + i, instance_suffix=str(i)),
                               port=base + i, dns_name=f"webapp{i}.local")
        for i in range(1, 7)
    }
    first = [webapps[f"webapp{i}"] for i in range(1, 5)]
    second = [webapps[f"webapp{i}"] for i in (5, 6)]
    return {
        **webapps,
        "nginx": Instance(make_proxy(port=base + 80, webapps=first), port=base + 80,
                          webapps=[w.process.instance_name for w in first]),
        "nginx2": Instance(make_proxy(port=base + 81, webapps=second, instance_suffix="2"),
                           port=base + 81,
                           webapps=[w.process.instance_name for w in second]),
    }
