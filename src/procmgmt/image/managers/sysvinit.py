"""sysvinit as PID 1: a small init (``init.sh``) runs each generated script's ``start``
in dependency order (each waits until its process is ready, as ``<script> start``
does by hand) and, on SIGTERM or SIGINT, each ``stop`` in reverse order, then exits.
It also reaps the orphans that daemons leave behind, as PID 1 must.
"""

from __future__ import annotations

import os

from procmgmt.backends._shell import shell_file
from procmgmt.image.generation import ImageGeneration
from procmgmt.image.managers.start import Owner, Start
from procmgmt.image.tree import Tree
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.settings import Settings

#: Where the init lives in the image.
INIT = "/etc/procmgmt/init.sh"


def layout(gen: ImageGeneration, settings: Settings, tree: Tree, owner: Owner) -> Start:
    """The init and its arguments: the scripts in start order."""
    tree.file(INIT, ("#!/bin/sh\n" + shell_file("procmgmt.image.managers", "init.sh")).encode(),
              0o555, origin="sysvinit image init")
    scripts = [os.path.join(p.path, str(p.extra.get("script") or f"etc/rc.d/init.d/{p.name}"))
               for p in gen.processes]
    return Start(("/bin/sh", INIT, *scripts), (f"PATH={SYSTEM_PATH}",), ("sh", "sleep"))
