"""Deploy one processes model across many hosts (``procmgmt network``).

The infrastructure model (:mod:`.infrastructure`) names the targets, the
distribution model (:mod:`.distribution`) maps instances to them, and the
transition (:mod:`.transition`) moves every target from one coordinator
generation to the next with Disnix's ordering and all-or-nothing rollback.
Hosts are reached through pyinfra, run in a worker process
(:mod:`.worker`) so its gevent loop never touches the coordinator; on each
host procmgmt itself (:mod:`.agent`) keeps that host's generations.

Models import what they need from here: :class:`Target`, :class:`SSH`,
:class:`Local` for infrastructure files, :func:`placement` for processes
models that configure one instance with another's host address.
"""

from __future__ import annotations

from procmgmt.network.infrastructure import SSH, Local, Target
from procmgmt.network.placement import Placement, placement

__all__ = ["SSH", "Local", "Placement", "Target", "placement"]
