"""Constructors of the webapps-nginx example: the webapps example's test webapp
plus the catalogue's nginx reverse proxy.

The webapp constructor is loaded straight from ``../webapps/constructors.py``
(one definition for both examples) and given a TCP readiness check, so
nginx starts only once its upstreams accept connections (a foreground webapp
counts as started before it has bound its port). It is loaded under its own module name
and not registered in ``sys.modules``: the model loader forgets only helper
modules next to the model, and a ``constructors`` entry pointing at the other
example's file would shadow that example's own ``constructors`` later on.
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
_spec = importlib.util.spec_from_file_location("procmgmt_example_webapps_constructors",
                                               _WEBAPPS)
assert _spec is not None and _spec.loader is not None, _WEBAPPS
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def webapp(settings: Settings) -> Callable[..., Process]:
    """The webapps example's webapp, ready when its port accepts connections."""
    make = _module.webapp(settings)

    def instance(*, port: int, **kwargs: Any) -> Process:
        return dataclasses.replace(make(port=port, **kwargs), readiness=TCP(port=port))

    return instance

nginx_reverse_proxy_host_based = reverse_proxy_host_based

__all__ = ["nginx_reverse_proxy_host_based", "webapp"]
