"""The switch use case: build a model, activate it, record the generation.

Everything that deploys (the ``procmgmt switch`` command, the
:mod:`procmgmt.testing` driver, the benchmarks, the tests) goes through
:class:`Switcher`, so the sequence exists once:

1. build the model into the store under the store's shared lock (a
   concurrent ``gc`` cannot delete a half-written entry);
2. let the engine activate it under the profile lock;
3. record it: a new generation number, or, when the generation already
   current has the very same store path (nothing changed), that number
   again, so a repeated switch does not grow the profile.

Switching to an existing generation (``--switch-generation``,
``--rollback``) records nothing new: it only moves the current pointer.

Nothing here prints: progress goes to the engine's ``out`` stream, build
warnings to the ``procmgmt`` logger (the command line shows them as
``procmgmt: warning: ...``), and everything else is returned.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import TextIO

from procmgmt.backends import get_backend
from procmgmt.deploy.build import build, evaluate, store_rendered
from procmgmt.deploy.engine import Engine, SwitchResult
from procmgmt.deploy.gc import store_lock
from procmgmt.deploy.generations import check_same_model
from procmgmt.deploy.options import Options
from procmgmt.deploy.plan import Plan
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.state import init_state
from procmgmt.errors import UsageError
from procmgmt.manifest import Generation, load_generation
from procmgmt.model.loader import Model
from procmgmt.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Built:
    """A model evaluated and built into the store, not yet activated."""

    model: Model
    generation: Generation
    #: Wall time of evaluating, validating and rendering.
    seconds: float


@dataclass(frozen=True)
class Switched:
    """The outcome of one switch (or, for a dry run, what it would do)."""

    #: The generation switched to.
    generation: Generation
    #: The plan, the recorded generation number (None for a dry run), what
    #: started and stopped, and the activation time.
    result: SwitchResult
    #: The model built for it; None when switching to an existing generation.
    built: Built | None = None

    @property
    def number(self) -> int | None:
        """The generation number now current; None for a dry run."""
        return self.result.generation

    @property
    def plan(self) -> Plan:
        """What stops, starts and stays."""
        return self.result.plan


def build_model(settings: Settings, model: str | None) -> Built:
    """Evaluate ``model`` (None: the empty model) and build it into the store.

    Creates the state dirs first, as a switch would. The backend is looked up
    before the model runs, so a misspelled ``-P`` fails before any user code.
    Build warnings go to this module's logger."""
    t0 = time.monotonic()
    init_state(settings)
    backend = get_backend(settings.process_manager)  # unknown backend: fail before evaluating
    if not backend.capabilities.deploys:
        backend.activator(settings)  # a backend that cannot deploy says why (UsageError)
    m, specs = evaluate(model, settings)
    with store_lock(settings, exclusive=False):
        gen = build(m, specs, settings)
    for w in gen.warnings:
        log.warning("%s", w)
    return Built(m, gen, time.monotonic() - t0)


def build_files(settings: Settings, model: str) -> str:
    """The store path of one entry holding every file a backend that does not
    deploy (``none``: agnostic specs) renders for ``model``; no generation.

    Creates the state dirs first, as :func:`build_model` does."""
    init_state(settings)
    m, specs = evaluate(model, settings)
    with store_lock(settings, exclusive=False):
        path = store_rendered(m, specs, settings)
    return path


def keep_current_backend(settings: Settings) -> Settings:
    """``settings`` with the process manager of the current generation, unless one
    was chosen explicitly: a redeploy without ``-P`` stays with the manager that
    runs the processes now."""
    if settings.process_manager_given:
        return settings
    path = Profile(settings).current_path()
    if not path:
        return settings
    return settings.with_process_manager(load_generation(path).backend)


def assign_ids(settings: Settings, model: str,
               id_resources: str) -> tuple[Settings, list[str]]:
    """Give the model's instances free IDs from ``id_resources``: the ids file of
    ``settings`` (which must name one) is created or updated in place. Returns
    settings that read the updated file, and one line per change for the user."""
    from procmgmt.ids import assign_for_model, with_ids, write_atomic

    ids_file = settings.ids_file
    if not ids_file:
        raise UsageError("assigning IDs needs an ids file to update")
    ids_path = ids_file if os.path.exists(ids_file) else None
    result = assign_for_model(model, id_resources, ids_path, settings)
    write_atomic(ids_file, result.assignments.to_json())
    return with_ids(settings, ids_file), result.describe()


class Switcher:
    """Deploys models and generations of one profile.

    Settings and options are fixed at construction; to deploy with others
    (another process manager, IDs just assigned) make another switcher."""

    def __init__(self, settings: Settings, options: Options | None = None,
                 out: TextIO | None = None) -> None:
        self._settings = settings
        self.engine = Engine(settings, out=out, options=options)
        self.profile = Profile(settings)

    @property
    def settings(self) -> Settings:
        """The settings every build and switch of this switcher uses."""
        return self._settings

    def build(self, model: str | None) -> Built:
        """Build ``model`` (None: the empty model) without activating it."""
        return build_model(self._settings, model)

    def plan(self, generation: Generation) -> Plan:
        """What switching to ``generation`` would do (no lock: a dry run only reads)."""
        return self.engine.plan(generation)

    def deploy(self, model: str | None, *, dry_run: bool = False,
               replace: bool = False) -> Switched:
        """Build ``model`` (None: undeploy) and switch to it as the next generation.

        Unless ``replace``, a model file other than the current generation's is
        refused before anything is built (:meth:`check_model`); a dry run changes
        nothing, so it is not refused."""
        if not (dry_run or replace):
            self.check_model(model)
        built = self.build(model)
        if dry_run:
            return Switched(built.generation, SwitchResult(self.plan(built.generation)), built)
        return Switched(built.generation, self.activate(built.generation), built)

    def check_model(self, model: str | None) -> None:
        """UsageError when ``model`` would replace another model's deployment in this
        profile (see :func:`procmgmt.deploy.generations.check_same_model`)."""
        path = self.profile.current_path()
        current = load_generation(path) if path else None
        check_same_model(current, self.profile.current_number(), model, self.profile.name)

    def undeploy(self, *, dry_run: bool = False) -> Switched:
        """Switch to the empty model: every process stops (state dirs stay)."""
        return self.deploy(None, dry_run=dry_run)

    def activate(self, generation: Generation) -> SwitchResult:
        """Switch to a freshly built ``generation`` and record it: a new number, or
        the current one when the current generation is this very store path."""
        profile = self.profile

        def register() -> int:
            current = profile.current_number()
            if current is not None and profile.current_path() == generation.path:
                return current
            return profile.add(generation.path)

        return self.engine.switch(generation, register)

    def switch_to_generation(self, number: int, *, dry_run: bool = False) -> Switched:
        """Switch to the recorded generation ``number`` and make it current."""
        generation = load_generation(self.profile.path_of(number))
        if dry_run:
            return Switched(generation, SwitchResult(self.plan(generation)))
        state_dir = generation.settings.get("state_dir")
        if state_dir not in (None, self._settings.state_dir):
            raise UsageError(f"generation {number} was built for state dir "
                             f"{state_dir}, not {self._settings.state_dir}")
        profile = self.profile

        def register() -> int:
            profile.set_current(number)
            return number

        return Switched(generation, self.engine.switch(generation, register))

    def rollback(self, *, dry_run: bool = False) -> Switched:
        """Switch back to the generation before the current one."""
        return self.switch_to_generation(self.profile.previous_number(), dry_run=dry_run)
