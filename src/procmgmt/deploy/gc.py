"""Garbage collection: delete store entries that no generation of any profile references.

Only store entries go; state directories are never touched. Builds hold
the store lock shared while they add entries that no generation references
yet, and gc holds it exclusively, so gc cannot collect a build in flight.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from procmgmt import fsutil
from procmgmt.deploy import store
from procmgmt.errors import ManifestError, storage
from procmgmt.manifest import load_generation
from procmgmt.settings import Settings

_LINK = re.compile(r"^.+-\d+-link$")


@contextmanager
def store_lock(settings: Settings, exclusive: bool) -> Iterator[None]:
    """Shared (build) or exclusive (gc) lock of the store."""
    path = os.path.join(settings.procmgmt_dir, "store.lock")
    with storage("open the store lock", path):
        fsutil.ensure_dir(settings.procmgmt_dir)
        fd = fsutil.open_file(path, fsutil.PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def live_paths(settings: Settings) -> set[str]:
    """Store entries referenced by any generation of any profile."""
    live: set[str] = set()
    pdir = settings.profiles_dir
    if not os.path.isdir(pdir):
        return live
    for entry in os.listdir(pdir):
        if not _LINK.match(entry):
            continue
        try:
            target = os.readlink(os.path.join(pdir, entry))
            gen = load_generation(target)
        except (OSError, ManifestError):
            continue
        live.add(os.path.realpath(target))
        for p in gen.processes:
            live.add(os.path.realpath(p.path))
        if gen.extras_path:
            live.add(os.path.realpath(gen.extras_path))
    return live


def collect(settings: Settings, dry_run: bool = False) -> list[str]:
    """Delete unreferenced entries; return their paths."""
    with store_lock(settings, exclusive=True):
        live = live_paths(settings)
        dead = [p for p in store.entries(settings.store_dir) if os.path.realpath(p) not in live]
        if not dry_run:
            for p in dead:
                store.remove(p)
        return dead
