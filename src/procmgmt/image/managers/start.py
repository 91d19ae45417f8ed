"""What a manager's layout returns: PID 1 and what the closure must hold for it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """Who owns the directories processes write: root in a privileged image, the
    image's user in an unprivileged one."""

    uid: int
    gid: int


@dataclass(frozen=True)
class Start:
    """What PID 1 is, and what the closure must hold for it."""

    entrypoint: tuple[str, ...]
    env: tuple[str, ...]
    #: Programs (names or absolute paths) the manager itself runs.
    programs: tuple[str, ...] = ()
    #: Python packages to carry (their directories, without byte code).
    python_packages: tuple[str, ...] = ()
