"""How each process manager runs an image's generation as PID 1.

A manager lays out what its activator would set up on a host (supervisord's
config and links, s6's scan dir, the order of the sysvinit scripts) and says
what PID 1 runs, with which environment, and which programs and Python
packages the image must carry for it. Only managers that run a generation by
themselves, started once, fit: :data:`MANAGERS` lists them.
"""

from __future__ import annotations

from collections.abc import Callable

from procmgmt.errors import UsageError
from procmgmt.image.generation import ImageGeneration
from procmgmt.image.managers import s6, supervisord, sysvinit
from procmgmt.image.managers.start import Owner, Start
from procmgmt.image.tree import Tree
from procmgmt.settings import Settings

#: How a manager lays out a generation in an image's tree, and what PID 1 runs.
Layout = Callable[[ImageGeneration, Settings, Tree, Owner], Start]

#: backend name -> its layout.
MANAGERS: dict[str, Layout] = {"sysvinit": sysvinit.layout, "s6": s6.layout,
                               "supervisord": supervisord.layout}


def layout(gen: ImageGeneration, settings: Settings, tree: Tree, owner: Owner) -> Start:
    """Lay out ``gen`` for its manager in ``tree``; what PID 1 runs."""
    manager = MANAGERS.get(gen.backend)
    if manager is None:
        raise UsageError(f"procmgmt image runs sysvinit, s6 or supervisord as PID 1, not "
                         f"{gen.backend} (choose one with -P)")
    return manager(gen, settings, tree, owner)
