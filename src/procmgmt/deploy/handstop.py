"""Processes stopped by hand (``procmgmt stop``), and why a switch leaves them stopped.

A switch starts again every kept process it finds not running: a crashed
process comes back with the next deployment. A process the operator stopped
on purpose must not: it stays stopped until ``procmgmt start`` or until a
switch *changes* it (then the new version starts, as any changed process).

The record is ``profiles/<profile>.stopped``, one ``NAME HASH`` per line. The
hash is the process's content hash when it was stopped, so a switch that
changes the process (another hash) voids the entry by itself; a switch also
prunes entries of processes it does not keep unchanged, so rolling back to an
earlier identical version does not bring an old entry back to life. It is
written atomically (a temporary file renamed over it) with mode 0644 whatever
the umask, only under the profile lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from procmgmt import fsutil
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings


def record_path(settings: Settings) -> str:
    """``profiles/<profile>.stopped``."""
    return os.path.join(settings.profiles_dir, f"{settings.profile}.stopped")


def read(settings: Settings) -> dict[str, str]:
    """name -> hash of every recorded entry (empty when there is no record)."""
    try:
        with open(record_path(settings), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return {}
    entries = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2:
            entries[parts[0]] = parts[1]
    return entries


def held(settings: Settings, gen: Generation) -> set[str]:
    """Names of ``gen``'s processes stopped by hand (the recorded hash is theirs)."""
    entries = read(settings)
    return {p.name for p in gen.processes if entries.get(p.name) == p.hash}


def _write(settings: Settings, entries: dict[str, str]) -> None:
    path = record_path(settings)
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    fsutil.ensure_dir(settings.profiles_dir)
    # 0644, not the caller's umask: status run by anyone reads it; only we write it.
    fsutil.write_atomic(path, "".join(f"{name} {h}\n" for name, h in sorted(entries.items())),
                        fsutil.FILE, fsync=True)


def mark(settings: Settings, procs: Iterable[DeployedProcess]) -> None:
    """Record ``procs`` as stopped by hand."""
    entries = read(settings)
    entries.update({p.name: p.hash for p in procs})
    _write(settings, entries)


def clear(settings: Settings, names: Iterable[str]) -> None:
    """Forget ``names`` (they were started by hand)."""
    entries = read(settings)
    drop = set(names) & set(entries)
    if drop:
        _write(settings, {n: h for n, h in entries.items() if n not in drop})


def kept_by_switch(settings: Settings, keep: Iterable[DeployedProcess]) -> set[str]:
    """For a switch that keeps ``keep`` unchanged: the names among them stopped by
    hand (the switch must not start them again). Entries of every other process
    are dropped: the switch changes or removes those."""
    entries = read(settings)
    kept = {p.name: p.hash for p in keep if entries.get(p.name) == p.hash}
    if kept != entries:
        _write(settings, kept)
    return set(kept)
