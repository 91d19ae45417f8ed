"""The infrastructure model: the targets a network deployment can use.

An infrastructure file defines ``infrastructure()`` returning a list of
:class:`Target` (or a mapping name -> Target). A target says how to reach the
host (:class:`SSH` or :class:`Local`), which process manager runs the
processes there, the settings of procmgmt on that host (state dir, whether
processes may run as other users, profile), where procmgmt lives there
(``venv``) and free-form ``properties`` other instances may read through
:func:`procmgmt.network.placement` (typically ``address``: how services on
other hosts reach this one).

Mistakes come back as located problems (file:line of the ``Target(...)``):
a duplicate name, an unknown process manager, or one the target says it
does not have (``backends``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from procmgmt.errors import Problem, ValidationError
from procmgmt.network.userfile import call, load_function

FUNCTION = "infrastructure"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _origin() -> tuple[str | None, int | None]:
    """File and line of the user code that wrote the ``Target(...)``."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_PACKAGE_DIR) and not name.startswith("<"):
            return name, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None, None


@dataclass(frozen=True)
class SSH:
    """Reach the host over SSH (pyinfra's ``@ssh`` connector) with a key."""

    host: str
    port: int = 22
    user: str | None = None
    key: str | None = None
    #: known_hosts file to check (and, for a new host, record) the host key in;
    #: None: the user's own.
    known_hosts: str | None = None


@dataclass(frozen=True)
class Local:
    """The coordinator's own machine (pyinfra's ``@local`` connector)."""


@dataclass(frozen=True)
class Target:
    """One host of the infrastructure."""

    name: str
    reach: SSH | Local
    process_manager: str
    #: procmgmt's state dir on the target (every other dir derives from it).
    state_dir: str
    #: True: processes run as the login user (an unprivileged target).
    force_disable_user_change: bool = True
    profile: str = "default"
    #: The venv holding procmgmt on the target (created when missing).
    venv: str = "~/.local/share/procmgmt/venv"
    #: A wheel or sdist on the coordinator to install into ``venv`` when it lacks
    #: procmgmt (None: the coordinator's own procmgmt and requirements, as wheels,
    #: installed with no package index).
    install_from: str | None = None
    #: Process managers the target has (None: any procmgmt can deploy).
    backends: tuple[str, ...] | None = None
    #: Free-form facts other instances read (``address``, ``zone`` ...).
    properties: Mapping[str, Any] = field(default_factory=dict)
    origin: tuple[str | None, int | None] = field(default=(None, None), compare=False)

    def __post_init__(self) -> None:
        if self.origin == (None, None):
            object.__setattr__(self, "origin", _origin())

    @property
    def address(self) -> str:
        """How other hosts reach this one: ``properties['address']``, else the SSH host."""
        given = self.properties.get("address")
        if given:
            return str(given)
        return self.reach.host if isinstance(self.reach, SSH) else "127.0.0.1"


@dataclass(frozen=True)
class Infrastructure:
    """The targets, by name, and the file they came from."""

    file: str
    targets: dict[str, Target]

    def problem(self, target: Target, fieldname: str, message: str) -> Problem:
        """A problem located at the target's definition."""
        file, line = target.origin
        return Problem(message, f"target {target.name}", fieldname, file or self.file, line)


def load_infrastructure(path: str, timeout: float | None = None) -> Infrastructure:
    """Evaluate and check the infrastructure file at ``path``."""
    func = load_function(path, FUNCTION, "infrastructure", timeout)
    result = call(func, path, "infrastructure", timeout)
    file = os.path.abspath(path)
    items = list(result.values()) if isinstance(result, Mapping) else result
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, Target) for t in items):
        raise ValidationError([Problem(f"{FUNCTION}() must return a list of Target(...) "
                                       f"(or a dict of them), not {type(result).__name__}",
                                       file=file)])
    from procmgmt.backends import deployable_names  # here: the target agent imports this module

    infra = Infrastructure(file, {})
    problems: list[Problem] = []
    known = set(deployable_names())
    for target in items:
        if target.name in infra.targets:
            problems.append(infra.problem(target, "name", f"a second target named "
                                          f"{target.name!r}"))
            continue
        infra.targets[target.name] = target
        if target.process_manager not in known:
            problems.append(infra.problem(
                target, "process_manager", f"{target.process_manager!r} is not a process "
                f"manager procmgmt deploys with (one of {', '.join(sorted(known))})"))
        elif target.backends is not None and target.process_manager not in target.backends:
            problems.append(infra.problem(
                target, "process_manager", f"the target has no {target.process_manager} "
                f"(it has {', '.join(target.backends) or 'none'})"))
        if not os.path.isabs(target.state_dir):
            problems.append(infra.problem(target, "state_dir", "must be an absolute path"))
        if isinstance(target.reach, SSH) and not (0 < target.reach.port < 65536):
            problems.append(infra.problem(target, "reach.port",
                                          f"{target.reach.port} is not a TCP port"))
    if not infra.targets and not problems:
        problems.append(Problem(f"{FUNCTION}() returned no target", file=file))
    if problems:
        raise ValidationError(problems)
    return infra
