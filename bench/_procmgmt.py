"""Driving procmgmt in-process, the way ``procmgmt switch`` does, with timestamps per phase."""

from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass, field
from typing import Any

from procmgmt.deploy.build import build, evaluate
from procmgmt.deploy.engine import Engine, SwitchResult
from procmgmt.deploy.gc import store_lock
from procmgmt.deploy.options import DEFAULT_MAX_PARALLEL, Options
from procmgmt.deploy.switch import Switcher
from procmgmt.manifest import Generation


@dataclass
class Deployer:
    """One private deployment (state dir, backend) and its switcher."""

    settings: Any
    max_parallel: int = DEFAULT_MAX_PARALLEL
    #: ``switch --start-grace`` (None: the default).
    start_grace: float | None = None
    log: io.StringIO = field(default_factory=io.StringIO)

    def __post_init__(self) -> None:
        options = Options(max_parallel=self.max_parallel)
        if self.start_grace is not None:
            options = dataclasses.replace(options, start_grace=self.start_grace)
        self.switcher = Switcher(self.settings, options, out=self.log)

    @property
    def engine(self) -> Engine:
        """The engine of the deployment (its activators)."""
        return self.switcher.engine

    def build(self, model: str | None) -> tuple[Generation, float]:
        """Evaluate and build ``model`` (None: the empty model); (generation, seconds)."""
        built = self.switcher.build(model)
        return built.generation, built.seconds

    def build_uncached(self, model: str) -> float:
        """Seconds of the same build without the render cache (every process
        rendered, as before the cache): the baseline of the cached build."""
        t0 = time.monotonic()
        m, specs = evaluate(model, self.settings)
        with store_lock(self.settings, exclusive=False):
            build(m, specs, self.settings, use_cache=False)
        return time.monotonic() - t0

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
