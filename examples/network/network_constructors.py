"""Constructors of the network example: the webapps example's webapp, bound to an
address (its host's), and the catalogue's host-based nginx reverse proxy.

The webapp constructor is loaded from ``../webapps/constructors.py`` under a
module name of its own (see ``examples/webapps-nginx/constructors.py`` for why
it is not registered in ``sys.modules``). This module has a name of its own
for the same reason: a ``constructors`` module another model left imported
would shadow it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable
from typing import Any

from procmgmt import Process, Settings
from procmgmt.readiness import TCP
from procmgmt.services.nginx import reverse_proxy_host_based

_WEBAPPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "webapps", "constructors.py")
_spec = importlib.util.spec_from_file_location("procmgmt_example_network_webapps", _WEBAPPS)
assert _spec is not None and _spec.loader is not None, _WEBAPPS
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def webapp(settings: Settings) -> Callable[..., Process]:
    """The test webapp listening on ``bind:port``, ready once that accepts connections."""
    make = _module.webapp(settings)

    def instance(*, port: int, bind: str = "127.0.0.1", broken: bool = False,
                 **kwargs: Any) -> Process:
        proc = make(port=port, **kwargs)
        # broken: a webapp that exits at once (a port it cannot parse), to show a
        # failed start rolling every host back.
        env = {**proc.environment, "BIND": bind, "PORT": "broken" if broken else str(port)}
        return dataclasses.replace(proc, environment=env,
                                   readiness=TCP(port=port, host=bind, timeout=10))

    return instance


nginx_reverse_proxy_host_based = reverse_proxy_host_based

__all__ = ["nginx_reverse_proxy_host_based", "webapp"]
