"""Six webapps with dependencies: webapp1 first, webapp2/3 after it, webapp4 after both...

Switching from ``processes.py`` stops ``webapp``, keeps ``webapp1`` running
untouched (same rendered files) and starts the others in dependency order.
"""

from __future__ import annotations

from constructors import webapp

from procmgmt import Instance, Settings


def processes(settings: Settings) -> dict[str, Instance]:
    base = int(settings.extra_params.get("port_base", 5000))
    make_webapp = webapp(settings)
    webapp1 = make_webapp(port=base + 1, instance_suffix="1")
    webapp2 = make_webapp(port=base + 2, instance_suffix="2", dependencies=[webapp1])
    webapp3 = make_webapp(port=base + 3, instance_suffix="3", dependencies=[webapp1])
    webapp4 = make_webapp(port=base + 4, instance_suffix="4", dependencies=[webapp2, webapp3])
    webapp5 = make_webapp(port=base + 5, instance_suffix="5")
    webapp6 = make_webapp(port=base + 6, instance_suffix="6", dependencies=[webapp5])
    procs = [webapp1, webapp2, webapp3, webapp4, webapp5, webapp6]
    return {
        p.instance_name: Instance(p, port=base + i, dns_name=f"{p.instance_name}.local")
        for i, p in enumerate(procs, start=1)
        if p.instance_name
    }
