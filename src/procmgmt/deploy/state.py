"""``init-state``: create the shared state directories before anything starts.

Mirrors nixproc-init-state: state, runtime, log, tmp, cache, spool, lock
and lib dirs. A system tmp dir is sticky and world-writable (1777) as
/tmp is; every other directory procmgmt creates is 0755, and the
procmgmt dir holding the store is 0755 too (store entries are read-only).
Existing directories are never deleted or re-permissioned.
"""

from __future__ import annotations

import os

from procmgmt.errors import storage
from procmgmt.settings import Settings


def init_state(settings: Settings) -> list[str]:
    """Create missing directories; return the ones created."""
    created: list[str] = []

    def mk(path: str, mode: int = 0o755) -> None:
        if os.path.isdir(path):
            return
        with storage("create the directory", path):
            os.makedirs(path, mode=mode, exist_ok=True)
            os.chmod(path, mode)
        created.append(path)

    mk(settings.state_dir)
    system_tmp = settings.tmp_dir == "/tmp"
    if not system_tmp:
        shared_tmp = settings.privileged
        mk(settings.tmp_dir, 0o1777 if shared_tmp else 0o755)
    for attr in ("runtime_dir", "log_dir", "cache_dir", "spool_dir", "lock_dir", "lib_dir"):
        mk(getattr(settings, attr))
    mk(settings.procmgmt_dir)
    mk(settings.store_dir)
    mk(settings.profiles_dir)
    return created
