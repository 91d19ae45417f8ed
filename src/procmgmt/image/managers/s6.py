"""s6 as PID 1: ``s6-svscan`` over a scan dir holding every process's service
directory, as the s6 activator installs them but without the ``down`` file, so
s6-svscan starts them all at once; each ``run`` script waits for its
dependencies (``s6-svwait``), so the order still holds. SIGTERM makes s6-svscan
bring every service down and exit.
"""

from __future__ import annotations

import os
import posixpath

from procmgmt import fsutil
from procmgmt.backends.s6.svscan import max_services
from procmgmt.image.generation import ImageGeneration
from procmgmt.image.managers.start import Owner, Start
from procmgmt.image.tree import Tree
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.settings import Settings

#: What s6-svscan and its helpers run besides the tools the scripts name (libs6 runs
#: s6-ftrigrd, by absolute path, for s6-svwait and s6-notifyoncheck).
PROGRAMS = ("s6-svscan", "s6-supervise", "s6-svscanctl", "s6-svc", "s6-svok", "s6-svstat",
            "s6-svwait", "s6-ftrigrd")


def layout(gen: ImageGeneration, settings: Settings, tree: Tree, owner: Owner) -> Start:
    """The scan dir (service directories written, writable by the image's user, as
    s6-supervise writes ``supervise/`` and ``event/`` into them) and s6-svscan."""
    uid, gid = owner.uid, owner.gid
    base = os.path.join(settings.procmgmt_dir, "s6", settings.profile)
    scan = os.path.join(base, "scan")
    tree.directory(base, fsutil.DIR, uid, gid, origin="s6 scan dir")
    tree.directory(scan, fsutil.DIR, uid, gid, origin="s6 scan dir")
    for p in gen.processes:
        prefix = str(p.extra.get("service_dir") or f"s6/{p.name}") + "/"
        target = posixpath.join(scan, p.name)
        tree.directory(target, fsutil.DIR, uid, gid, origin=f"s6 service dir of {p.name}")
        for f in p.files:
            if not f.path.startswith(prefix) or f.path == prefix + "down":
                continue
            path = posixpath.join(target, f.path[len(prefix):])
            parent = posixpath.dirname(path)
            while parent != target and parent not in tree:
                tree.directory(parent, fsutil.DIR, uid, gid,
                               origin=f"s6 service dir of {p.name}")
                parent = posixpath.dirname(parent)
            if f.symlink is not None:
                tree.symlink(path, f.symlink, origin=f"s6 service dir of {p.name}")
            else:
                assert f.content is not None
                tree.file(path, f.content.encode(), f.mode, uid, gid,
                          origin=f"s6 service dir of {p.name}")
        log_dir = p.extra.get("log_dir")
        if isinstance(log_dir, str):
            tree.directory(log_dir, fsutil.PRIVATE_DIR, uid, gid, origin=f"s6-log of {p.name}")
    return Start(("s6-svscan", "-c", str(max_services(len(gen.processes))), scan),
                 (f"PATH={SYSTEM_PATH}",), PROGRAMS)
