"""Webapps on some hosts, nginx on another proxying to them by host name.

Every instance binds the address of the host it is placed on
(``placement(settings).address(name)``), and nginx reaches each webapp at
its host's address: the ``host`` metadata of the webapp instance, read by
the reverse proxy constructor. Deployed with ``procmgmt switch`` (one
machine) every address is 127.0.0.1.

Extra parameters: ``port_base`` (webapp i listens on port_base + i, nginx on
port_base + 80), ``webapps`` (how many, default 2), ``broken`` (the name of a
webapp that fails to start).
"""

from __future__ import annotations

from network_constructors import nginx_reverse_proxy_host_based, webapp

from procmgmt import Instance, Settings
from procmgmt.network import placement


def processes(settings: Settings) -> dict[str, Instance]:
    net = placement(settings)
    base = int(settings.extra_params.get("port_base", 5000))
    count = int(settings.extra_params.get("webapps", 2))
    broken = settings.extra_params.get("broken")
    instances: dict[str, Instance] = {}
    for i in range(1, count + 1):
        name = f"webapp{i}"
        address = net.address(name)
        proc = webapp(settings)(port=base + i, bind=address, instance_suffix=str(i),
                                broken=name == broken)
        instances[name] = Instance(proc, port=base + i, host=address,
                                   dns_name=f"{name}.local")
    proxy = nginx_reverse_proxy_host_based(settings)(
        port=base + 80, bind=net.address("nginx"), webapps=list(instances.values()))
    instances["nginx"] = Instance(proxy, port=base + 80)
    return instances
