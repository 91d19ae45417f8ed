"""The links that make a supervisord run a generation: ``conf.d/<name>.conf``,
``bin/<name>-proxy`` and ``bin/<name>-liveness`` point into the generation's
store entries.

Switching a generation replaces links (each atomically, through a ``.new``
link), never file contents; ``reloadConfig`` then makes supervisord read them.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os

from procmgmt import fsutil
from procmgmt.backends.supervisord import external
from procmgmt.backends.supervisord.external import ExternalSupervisord
from procmgmt.backends.supervisord.format import program_file
from procmgmt.errors import DeployError
from procmgmt.manifest import Generation


def link(gen: Generation | None, *, conf_d: str, bin_dir: str, ext: ExternalSupervisord | None,
         record_file: str, profile: str) -> bool:
    """Make ``conf_d`` and ``bin_dir`` hold exactly ``gen``'s program and proxy files;
    True when anything changed.

    Our own conf.d and bin are procmgmt's alone. An external supervisord's
    include dir is shared: only entries of names this profile linked before
    (``record_file``) are replaced or removed, and an entry of someone else's
    under a name we need is an error, not overwritten."""
    wanted: dict[str, str] = {}
    names = [proc.name for proc in gen.processes] if gen else []
    for proc in gen.processes if gen else ():
        extra = proc.extra
        program = str(extra.get("program", program_file(proc.name)))
        wanted[os.path.join(conf_d, f"{proc.name}.conf")] = os.path.join(proc.path,
                                                                            program)
        for kind in ("proxy", "liveness"):
            if extra.get(kind):
                wanted[os.path.join(bin_dir, f"{proc.name}-{kind}")] = os.path.join(
                    proc.path, str(extra[kind]))
    owned: set[str] | None = None
    if ext is not None:
        owned = set(external.read_record(record_file).get("names") or ())
        mine = {os.path.join(d, f) for n in owned
                for d, f in ((conf_d, f"{n}.conf"), (bin_dir, f"{n}-proxy"),
                             (bin_dir, f"{n}-liveness"))}
        for path, target in wanted.items():
            if os.path.lexists(path) and path not in mine \
                    and not (os.path.islink(path) and os.readlink(path) == target):
                raise DeployError(f"{path} exists and is not procmgmt's (profile "
                                  f"{profile}): remove or rename it")
        bad = [n for n in names if not fnmatch.fnmatchcase(f"{n}.conf",
                                                           ext.pattern)]
        if bad:
            raise DeployError(f"{ext.conf} includes only "
                              f"{ext.pattern} files, not {', '.join(bad)}.conf")
        # Recorded before linking: a crash in between leaves nothing unowned.
        external.write_record(record_file, ext, sorted(owned | set(names)))
    changed = False
    for d in (conf_d, bin_dir):
        fsutil.ensure_dir(d)
        for entry in os.listdir(d):
            path = os.path.join(d, entry)
            if path in wanted:
                continue
            if owned is not None and not (
                    os.path.islink(path)
                    and any(entry in (f"{n}.conf", f"{n}-proxy", f"{n}-liveness")
                            for n in owned)):
                continue
            os.unlink(path)
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
        if names:
            external.write_record(record_file, ext, names)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(record_file)
    return changed
