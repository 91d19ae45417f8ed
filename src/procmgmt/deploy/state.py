"""``init-state``: create the shared state directories before anything starts.

Mirrors nixproc-init-state: state, runtime, log, tmp, cache, spool, lock
and lib dirs. A system tmp dir is sticky and world-writable (1777) as
/tmp is; every other directory procmgmt creates is 0755, and the
procmgmt dir holding the store is 0755 too (store entries are read-only).
Existing directories are never deleted or re-permissioned.
"""

from __future__ import annotations

import os

from procmgmt.settings import Settings


def directory_mode(settings: Settings, path: str) -> int:
    """The mode procmgmt gives a directory it creates: 1777 for a private tmp dir
    that processes of other users share (they write their pid files there), else
    0755. Generated init scripts that create a missing directory use it too."""
    shared_tmp = path == settings.tmp_dir and path != "/tmp" and settings.privileged
    return 0o1777 if shared_tmp else 0o755


def init_state(settings: Settings) -> list[str]:
    """Create missing directories; return the ones created."""
    created: list[str] = []

    def mk(path: str, mode: int = 0o755) -> None:
        if os.path.isdir(path):
            return
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)
        created.append(path)

    mk(settings.state_dir)
    if settings.tmp_dir != "/tmp":
        mk(settings.tmp_dir, directory_mode(settings, settings.tmp_dir))
    for attr in ("runtime_dir", "log_dir", "cache_dir", "spool_dir", "lock_dir", "lib_dir"):
        mk(getattr(settings, attr))
    mk(settings.procmgmt_dir)
    mk(settings.store_dir)
    mk(settings.profiles_dir)
    return created
