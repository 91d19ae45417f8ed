"""Driving procmgmt in-process, the way ``procmgmt switch`` does, with timestamps per phase."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

from procmgmt.deploy.build import build, evaluate
from procmgmt.deploy.engine import DEFAULT_MAX_PARALLEL, Engine, Options, SwitchResult
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.state import init_state
from procmgmt.manifest import Generation


@dataclass
class Deployer:
    """One private deployment (state dir, backend) and its engine."""

    settings: Any
    max_parallel: int = DEFAULT_MAX_PARALLEL
    log: io.StringIO = field(default_factory=io.StringIO)

    def __post_init__(self) -> None:
        self.engine = Engine(self.settings, out=self.log,
                             options=Options(max_parallel=self.max_parallel))
        self.profile = Profile(self.settings)

    def build(self, model: str | None) -> tuple[Generation, float]:
        """Evaluate and build ``model`` (None: the empty model); (generation, seconds)."""
        t0 = time.monotonic()
        m, specs = evaluate(model, self.settings)
        init_state(self.settings)
        gen = build(m, specs, self.settings)
        return gen, time.monotonic() - t0

    def switch_to(self, gen: Generation) -> tuple[SwitchResult, float]:
        """Activate a built generation (readiness-gated); (result, seconds)."""
        profile = self.profile

        def register() -> int:
            cur = profile.current_number()
            if cur is not None and profile.current_path() == gen.path:
                return cur
            return profile.add(gen.path)

        t0 = time.monotonic()
        result = self.engine.switch(gen, register)
        return result, time.monotonic() - t0

    def switch(self, model: str | None) -> tuple[SwitchResult, float, float]:
        """Build and activate: (result, build seconds, activation seconds)."""
        gen, tb = self.build(model)
        result, ta = self.switch_to(gen)
        return result, tb, ta
