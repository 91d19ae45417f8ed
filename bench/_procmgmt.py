"""Driving procmgmt in-process, the way ``procmgmt switch`` does, with timestamps per phase."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from procmgmt.deploy.engine import Engine, SwitchResult
from procmgmt.deploy.options import DEFAULT_MAX_PARALLEL, Options
from procmgmt.deploy.switch import Switcher
from procmgmt.manifest import Generation


@dataclass
class Deployer:
    """One private deployment (state dir, backend) and its switcher."""

    settings: Any
    max_parallel: int = DEFAULT_MAX_PARALLEL
    log: io.StringIO = field(default_factory=io.StringIO)

    def __post_init__(self) -> None:
        self.switcher = Switcher(self.settings, Options(max_parallel=self.max_parallel),
                                 out=self.log)

    @property
    def engine(self) -> Engine:
        """The engine of the deployment (its activators)."""
        return self.switcher.engine

    def build(self, model: str | None) -> tuple[Generation, float]:
        """Evaluate and build ``model`` (None: the empty model); (generation, seconds)."""
        built = self.switcher.build(model)
        return built.generation, built.seconds

    def switch_to(self, gen: Generation) -> tuple[SwitchResult, float]:
        """Activate a built generation (readiness-gated); (result, seconds)."""
        t0 = time.monotonic()
        result = self.switcher.activate(gen)
        return result, time.monotonic() - t0

    def switch(self, model: str | None) -> tuple[SwitchResult, float, float]:
        """Build and activate: (result, build seconds, activation seconds)."""
        gen, tb = self.build(model)
        result, ta = self.switch_to(gen)
        return result, tb, ta
