"""``init-state``: create the shared state directories before anything starts.

Mirrors nixproc-init-state: state, runtime, log, tmp, cache, spool, lock
and lib dirs. A privileged deployment's own tmp dir is sticky and
world-writable (1777) as /tmp is; every other directory procmgmt creates
is 0755 (service users must traverse them), and so is every missing parent
of the state dir: the modes are set explicitly (:mod:`procmgmt.fsutil`), so
neither umask 000 (world-writable parents) nor 077 (parents service users
cannot enter) changes them. The procmgmt dir holding the store is 0755 too
(store entries are read-only). Existing directories are never deleted or
re-permissioned. The parent of the per-service pid directories
(``<runtime dir>/procmgmt-pid``) is 0755 and owned by the deploying user;
:mod:`procmgmt.service_files` creates each service's own directory in it
before the service starts.
"""

from __future__ import annotations

from procmgmt import fsutil
from procmgmt.errors import storage
from procmgmt.settings import Settings


def directory_mode(settings: Settings, path: str) -> int:
    """The mode procmgmt gives a directory it creates: 1777 for a private tmp dir
    that processes of other users share (they write their pid files there), else
    0755. Generated init scripts that create a missing directory use it too."""
    shared_tmp = path == settings.tmp_dir and path != "/tmp" and settings.privileged
    return fsutil.STICKY_DIR if shared_tmp else fsutil.DIR


def init_state(settings: Settings) -> list[str]:
    """Create missing directories; return the ones created (parents included)."""
    created: list[str] = []

    def mk(path: str, mode: int = fsutil.DIR) -> None:
        with storage("create the directory", path):
            created.extend(fsutil.ensure_dir(path, mode))

    mk(settings.state_dir)
    if settings.tmp_dir != "/tmp":
        mk(settings.tmp_dir, directory_mode(settings, settings.tmp_dir))
    for attr in ("runtime_dir", "log_dir", "cache_dir", "spool_dir", "lock_dir", "lib_dir"):
        mk(getattr(settings, attr))
    mk(settings.pid_parent_dir)
    mk(settings.procmgmt_dir)
    mk(settings.store_dir)
    mk(settings.profiles_dir)
    return created
