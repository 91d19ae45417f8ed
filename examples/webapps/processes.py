"""Two test webapps: the smallest useful deployment.

``--extra-params '{"port_base": 35000}'`` moves every port (tests use
high, free ports); ``{"webapp_mode": "foreground"}`` or ``"daemon"`` forces
a mode, otherwise each process manager picks the one it prefers.
"""

from __future__ import annotations

from constructors import webapp

from procmgmt import Instance, Settings


def processes(settings: Settings) -> dict[str, Instance]:
    base = int(settings.extra_params.get("port_base", 5000))
    make_webapp = webapp(settings)
    return {
        "webapp": Instance(make_webapp(port=base), port=base, dns_name="webapp.local"),
        "webapp1": Instance(make_webapp(port=base + 1, instance_suffix="1"),
                            port=base + 1, dns_name="webapp1.local"),
    }
