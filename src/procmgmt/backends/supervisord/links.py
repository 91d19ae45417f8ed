"""The files that make a supervisord run a generation: the program sections in
``conf.d`` and ``bin/<name>-proxy`` and ``bin/<name>-liveness`` links into the
generation's store entries.

procmgmt's own supervisord reads every program from one file,
``conf.d/programs.conf`` (:func:`.format.programs_text`: one included file per
program costs supervisord time growing with the square of their number). It is
replaced atomically as a whole, so supervisord's next ``reloadConfig`` reads
either the old generation's programs or the new one's. An external
supervisord's include dir is shared with other people's files: there each
program is a link of its own, ``conf.d/<name>.conf``, and only the links this
profile recorded are touched. Links are replaced atomically through a ``.new``
link, never written through.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from procmgmt import fsutil
from procmgmt.backends.supervisord import external
from procmgmt.backends.supervisord.external import ExternalSupervisord
from procmgmt.backends.supervisord.format import PROGRAMS_FILE, program_file, programs_text
from procmgmt.errors import DeployError
from procmgmt.manifest import Generation

#: The helper programs a program's command may name (``%(here)s/../bin/<name>-<kind>``).
HELPERS = ("proxy", "liveness")


class Placed(Protocol):
    """A process whose rendered files are at ``path`` (a host's store entry, or an
    image's): what :func:`helper_links` and :func:`program_path` need of it."""

    @property
    def name(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def extra(self) -> Mapping[str, Any]: ...


def program_of(proc: Placed) -> str:
    """The process's program file (its ``[program:x]`` section), relative to its
    store entry."""
    return str(proc.extra.get("program", program_file(proc.name)))


def program_path(proc: Placed) -> str:
    """The process's program file in its store entry."""
    return os.path.join(proc.path, program_of(proc))


def helper_links(processes: Iterable[Placed], bin_dir: str) -> dict[str, str]:
    """``bin/<name>-proxy`` and ``bin/<name>-liveness`` link -> store file, for the
    processes that have them (the program sections name them relative to
    ``%(here)s``, the ``conf.d`` next to ``bin``)."""
    return {os.path.join(bin_dir, f"{proc.name}-{kind}"): os.path.join(proc.path,
                                                                       str(proc.extra[kind]))
            for proc in processes for kind in HELPERS if proc.extra.get(kind)}


def link(gen: Generation | None, *, conf_d: str, bin_dir: str, ext: ExternalSupervisord | None,
         record_file: str, profile: str) -> bool:
    """Make ``conf_d`` and ``bin_dir`` hold exactly ``gen``'s programs and helper
    links; True when anything changed.

    Our own conf.d and bin are procmgmt's alone: conf.d holds ``programs.conf``
    (none for an empty generation) and nothing else. An external supervisord's
    include dir is shared: only entries of names this profile linked before
    (``record_file``) are replaced or removed, and an entry of someone else's
    under a name we need is an error, not overwritten."""
    processes = list(gen.processes) if gen else []
    wanted = helper_links(processes, bin_dir)
    written: dict[str, bytes] = {}
    owned: set[str] | None = None
    if ext is None:
        if processes:
            written[os.path.join(conf_d, PROGRAMS_FILE)] = programs_text(
                (proc.name, _read(program_path(proc))) for proc in processes)
    else:
        for proc in processes:
            wanted[os.path.join(conf_d, f"{proc.name}.conf")] = program_path(proc)
        owned = _claim(ext, wanted, [proc.name for proc in processes], conf_d=conf_d,
                       bin_dir=bin_dir, record_file=record_file, profile=profile)
    changed = False
    for d in (conf_d, bin_dir):
        fsutil.ensure_dir(d)
        for entry in os.listdir(d):
            path = os.path.join(d, entry)
            if path in wanted or path in written:
                continue
            if owned is not None and not (
                    os.path.islink(path)
                    and any(entry in (f"{n}.conf", *(f"{n}-{k}" for k in HELPERS))
                            for n in owned)):
                continue
            os.unlink(path)
            changed = True
    for path, data in written.items():
        if _content(path) != data:
            fsutil.write_atomic(path, data, fsutil.FILE)
            changed = True
    for path, target in wanted.items():
        if os.path.islink(path) and os.readlink(path) == target:
            continue
        tmp = path + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, path)
        changed = True
    if ext is not None:
        names = [proc.name for proc in processes]
        if names:
            external.write_record(record_file, ext, names)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(record_file)
    return changed


def _claim(ext: ExternalSupervisord, wanted: Mapping[str, str], names: list[str], *,
           conf_d: str, bin_dir: str, record_file: str, profile: str) -> set[str]:
    """Check that the external include dir lets this profile link ``wanted`` and
    record the names as ours (before linking: a crash in between leaves nothing
    unowned); returns the names owned before."""
    owned = set(external.read_record(record_file).get("names") or ())
    mine = {os.path.join(d, f) for n in owned
            for d, f in ((conf_d, f"{n}.conf"),
                         *((bin_dir, f"{n}-{k}") for k in HELPERS))}
    for path, target in wanted.items():
        if os.path.lexists(path) and path not in mine \
                and not (os.path.islink(path) and os.readlink(path) == target):
            raise DeployError(f"{path} exists and is not procmgmt's (profile "
                              f"{profile}): remove or rename it")
    bad = [n for n in names if not fnmatch.fnmatchcase(f"{n}.conf", ext.pattern)]
    if bad:
        raise DeployError(f"{ext.conf} includes only "
                          f"{ext.pattern} files, not {', '.join(bad)}.conf")
    external.write_record(record_file, ext, sorted(owned | set(names)))
    return owned


def _read(path: str) -> bytes:
    """A program file of the store (root-owned, read-only: no check needed)."""
    with open(path, "rb") as f:
        return f.read()


def _content(path: str) -> bytes | None:
    """What ``path`` holds now, None if it is not a regular file we can read (a
    link or anything else there is replaced, never read through)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            return f.read()
    except OSError:
        return None
