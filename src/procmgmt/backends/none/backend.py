"""The ``none`` backend: one agnostic JSON spec per process."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from procmgmt.agnostic import SPEC_SUFFIX, process_json
from procmgmt.backends.base import (
    ALL_RESTART_POLICIES,
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    Coverage,
    File,
    Lifecycle,
    Ordering,
    PidFiles,
    Support,
)
from procmgmt.errors import Problem, UsageError
from procmgmt.model.process import Process
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings


def _spec_file(proc: Process) -> str:
    """A dependency is written as the relative file name of its spec, so a
    directory of specs is self-contained and can be copied anywhere."""
    return f"{proc.effective_name}{SPEC_SUFFIX}"


class NoneBackend(Backend):
    """Writes the model's own properties; the target backend is chosen later."""

    name = "none"
    capabilities = Capabilities(
        prefers=None,
        dependencies=Support.NOT_APPLICABLE,
        ordering=Ordering.NONE,
        ordering_detail="dependencies as relative spec file names",
        user_switching=Support.NOT_APPLICABLE,
        privileges=frozenset(),
        tested=Coverage.GENERATED,
        readiness=Support.NOT_APPLICABLE,
        readiness_kinds=frozenset(),
        pid_files=PidFiles.DAEMONS,
        deploys=False,
        # The specs keep restart and stop_timeout for the backend that translates them.
        lifecycle=Lifecycle(default_restart=None, restart_native=ALL_RESTART_POLICIES,
                            restart_delay=Support.NOT_APPLICABLE,
                            restart_max=Support.NOT_APPLICABLE,
                            stop_timeout=Support.NOT_APPLICABLE,
                            liveness=Support.NOT_APPLICABLE),
        notes="agnostic JSON specs (nix-processmgmt's processManager = null); "
              "translate them with 'procmgmt generate-config -P BACKEND'",
    )

    def _process(self, spec: ProcessSpec, ctx: BuildContext) -> Process:
        proc = ctx.processes.get(spec.name)
        if proc is None:
            raise ValueError(f"{spec.name}: the none backend renders processes of a model, "
                             "not normalized specs alone")
        return proc

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Values JSON cannot hold (a function override, a set), each located."""
        return ctx.problems((spec.name, field, message) for spec in specs
                            for field, message in process_json(self._process(spec, ctx),
                                                               _spec_file)[1])

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The spec dict: the properties the model set, dependencies as file names."""
        return process_json(self._process(spec, ctx), _spec_file)[0]

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """``<name>.json``, keys sorted so equal specs are equal files; readable by
        its owner only when it holds a declared password (like the manifest)."""
        text = json.dumps(native, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        users = (native.get("credentials") or {}).get("users") or {}
        secret = any(isinstance(u, dict) and u.get("password") for u in users.values())
        return [File(f"{spec.name}{SPEC_SUFFIX}", text, mode=0o600 if secret else 0o644)]

    def activator(self, settings: Settings) -> Activator:
        """Nothing deploys specs: say what to do with them instead."""
        raise UsageError("-P none only writes agnostic JSON specs ('procmgmt build -P none'); "
                         "translate them with 'procmgmt generate-config -P BACKEND' to deploy")
