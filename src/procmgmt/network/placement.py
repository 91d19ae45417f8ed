"""Where instances run, as the processes model sees it while it is evaluated.

A processes model deployed across hosts configures one instance with the
host of another (a proxy with the address of each webapp, a webapp with
its database's address). :func:`placement` gives the model that view:

    net = placement(settings)
    address = net.address("webapp1")        # the host of instance "webapp1"
    web = Instance(webapp(settings)(port=5000, bind=address), port=5000, host=address)

Outside a network deployment (``procmgmt switch``) every instance is on the
local host: ``address`` answers ``127.0.0.1`` and ``properties`` an empty
mapping, so the same model deploys on one machine unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from procmgmt.settings import Settings

LOCAL_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class Placement:
    """Instance name -> the properties of the (first) target it runs on."""

    #: The target being built (None: evaluating for the distribution, or not a
    #: network deployment).
    target: str | None = None
    hosts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def properties(self, instance: str) -> Mapping[str, Any]:
        """The host properties of ``instance`` (empty when it is not placed)."""
        return self.hosts.get(instance, {})

    def address(self, instance: str) -> str:
        """The address ``instance`` is reached at (``127.0.0.1`` when not placed)."""
        return str(self.properties(instance).get("address") or LOCAL_ADDRESS)

    def here(self, instance: str) -> bool:
        """True when ``instance`` runs on the target being built (always outside a
        network deployment)."""
        return self.target is None or self.hosts.get(instance, {}).get("target") == self.target


_current = Placement()


def placement(settings: Settings | None = None) -> Placement:
    """The placement of the evaluation under way (``settings`` is accepted for the
    constructor style of models; the placement does not depend on it)."""
    return _current


@contextmanager
def evaluating(view: Placement) -> Iterator[None]:
    """Make ``view`` the placement models see while the body runs."""
    global _current
    before, _current = _current, view
    try:
        yield
    finally:
        _current = before
