"""The distribution model: which instance runs on which target(s).

A distribution file defines ``distribution(infrastructure, processes)``:
``infrastructure`` maps target names to :class:`~.infrastructure.Target`,
``processes`` maps instance names to the model's instances (evaluated once
with every instance on the local host), and the result maps an instance
name to a target, a target name, or a list of them. A function of both, so
it can spread a family of instances over the hosts (``webapp1`` ...
``webappN`` round-robin). Instances it leaves out are not deployed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from procmgmt.errors import Problem, ValidationError
from procmgmt.model.loader import Model
from procmgmt.network.infrastructure import Infrastructure, Target
from procmgmt.network.userfile import call, load_function

FUNCTION = "distribution"


@dataclass(frozen=True)
class Distribution:
    """Instance name -> target names (in the order given), and the file."""

    file: str
    placed: dict[str, tuple[str, ...]]

    def on(self, target: str) -> list[str]:
        """The instances placed on ``target``."""
        return [name for name, targets in self.placed.items() if target in targets]


def load_distribution(path: str, infra: Infrastructure, model: Model,
                      timeout: float | None = None) -> Distribution:
    """Evaluate and check the distribution file at ``path``."""
    func = load_function(path, FUNCTION, "distribution", timeout)
    result = call(func, path, "distribution", timeout, dict(infra.targets),
                  dict(model.instances))
    file = os.path.abspath(path)
    if not isinstance(result, Mapping):
        raise ValidationError([Problem(f"{FUNCTION}() must return a dict of instance name -> "
                                       f"target(s), not {type(result).__name__}", file=file)])
    placed: dict[str, tuple[str, ...]] = {}
    problems: list[Problem] = []
    for key, value in result.items():
        name = str(key)
        if name not in model.instances:
            problems.append(Problem(f"the processes model has no instance {name!r}", name,
                                    None, file))
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        targets: list[str] = []
        for item in values:
            target = item.name if isinstance(item, Target) else item
            if not isinstance(target, str) or target not in infra.targets:
                problems.append(Problem(f"{item!r} is not a target of the infrastructure "
                                        f"(targets: {', '.join(infra.targets)})", name, None,
                                        file))
            elif target not in targets:
                targets.append(target)
        if targets:
            placed[name] = tuple(targets)
    if problems:
        raise ValidationError(problems)
    return Distribution(file, placed)
