"""Wheels of the coordinator's own procmgmt and its requirements, for a target to install.

A target without procmgmt gets exactly the coordinator's version, with no
package index and no network: the coordinator packs what is installed in
its own environment (procmgmt, then everything it requires, recursively,
without extras) into pure-Python wheels, the transition copies them over
and the target runs ``pip install --no-index --find-links``. Nothing is
built or downloaded: an installed distribution's files (its ``RECORD``) are
the wheel's contents again, and an editable install (a development
checkout) is packed from the package directory it imports from.

Only pure-Python distributions can be carried this way (a compiled module
is built for the coordinator, not the target): one that is not is a
located error naming it and the ``install_from`` way around it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import zipfile
from collections.abc import Iterator
from importlib import metadata

from procmgmt.errors import UsageError

#: dist-info files an installer writes about itself: not part of a wheel.
_INSTALLER_FILES = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
_COMPILED = (".so", ".pyd", ".dylib")


def _normalized(name: str) -> str:
    """A distribution name as wheel file names spell it."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _requirements(dist: metadata.Distribution) -> list[str]:
    """Names of what ``dist`` requires unconditionally (no extras) and is installed."""
    names = []
    for req in dist.requires or []:
        spec, _, marker = req.partition(";")
        if "extra" in marker:
            continue
        found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if found is None:
            continue
        try:
            metadata.distribution(found.group(1))
        except metadata.PackageNotFoundError:
            continue  # a marker excludes it here (or it is missing: pip says so there)
        names.append(found.group(1))
    return names


def _editable(dist: metadata.Distribution) -> bool:
    """True for a development install (PEP 610 ``dir_info.editable``)."""
    text = dist.read_text("direct_url.json")
    return bool(text and json.loads(text).get("dir_info", {}).get("editable"))


def _installed_files(dist: metadata.Distribution, info: str) -> Iterator[tuple[str, str]]:
    """(path in the wheel, file here) of an ordinary install, from its RECORD."""
    for f in dist.files or []:
        rel = str(f)
        if rel.startswith("..") or "__pycache__" in rel.split("/") or rel.endswith(".pyc"):
            continue  # scripts (remade from entry_points.txt) and byte code
        if rel.startswith(info + "/") and rel.split("/", 1)[1] in _INSTALLER_FILES:
            continue
        yield rel, str(dist.locate_file(f))


def _editable_files(dist: metadata.Distribution, info: str) -> Iterator[tuple[str, str]]:
    """(path in the wheel, file here) of a development install: every file of the
    packages it imports from, plus its metadata."""
    tops = (dist.read_text("top_level.txt") or "").split() or [_normalized(dist.name)]
    for top in tops:
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            raise UsageError(f"cannot pack {dist.name}: package {top!r} is not importable")
        root = next(iter(spec.submodule_search_locations))
        for dirpath, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".pyc"):
                    continue
                path = os.path.join(dirpath, name)
                yield os.path.join(top, os.path.relpath(path, root)), path
    for name in ("METADATA", "entry_points.txt", "top_level.txt"):
        if dist.read_text(name) is not None:
            yield f"{info}/{name}", str(dist.locate_file(f"{info}/{name}"))


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def installed(name: str) -> metadata.Distribution:
    """The distribution ``name`` as an installer installed it (its ``.dist-info`` has
    ``INSTALLER``): a source tree on ``sys.path`` may hold an ``.egg-info`` of the
    same name that lists the sources, not what is installed."""
    found = list(metadata.distributions(name=name))
    if not found:
        raise metadata.PackageNotFoundError(name)
    return next((d for d in found if d.read_text("INSTALLER") is not None), found[0])


def pack(name: str, dest: str) -> str:
    """A wheel of the installed distribution ``name`` in ``dest``; its path."""
    dist = installed(name)
    version = dist.version
    info = f"{_normalized(dist.name)}-{version}.dist-info"
    if not _editable(dist):
        info = next((str(f).split("/")[0] for f in dist.files or []
                     if str(f).endswith(".dist-info/METADATA")), info)
    files = list(_editable_files(dist, info) if _editable(dist)
                 else _installed_files(dist, info))
    compiled = [arc for arc, _ in files if arc.endswith(_COMPILED)]
    wheel_meta = dist.read_text("WHEEL") or ""
    if compiled or "Root-Is-Purelib: false" in wheel_meta:
        raise UsageError(f"cannot carry {dist.name} {version} to a target: it is not pure "
                         f"Python ({(compiled or ['Root-Is-Purelib: false'])[0]}); give the "
                         "target's install_from a package it can install")
    path = os.path.join(dest, f"{_normalized(dist.name)}-{version}-py3-none-any.whl")
    record = []
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, source in files:
            if arcname == f"{info}/WHEEL":
                continue
            with open(source, "rb") as f:
                data = f.read()
            zf.writestr(arcname, data)
            record.append(_record_line(arcname, data))
        wheel = (b"Wheel-Version: 1.0\nGenerator: procmgmt\nRoot-Is-Purelib: true\n"
                 b"Tag: py3-none-any\n")
        zf.writestr(f"{info}/WHEEL", wheel)
        record.append(_record_line(f"{info}/WHEEL", wheel))
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    os.replace(tmp, path)
    return path


def wheelhouse(dest: str, name: str = "procmgmt") -> list[str]:
    """Wheels of ``name`` and of everything it requires (recursively, no extras),
    as installed here, in ``dest``: what ``pip install --no-index --find-links``
    needs on a target."""
    os.makedirs(dest, exist_ok=True)
    done: dict[str, str] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        key = _normalized(current)
        if key in done:
            continue
        done[key] = pack(current, dest)
        todo += _requirements(installed(current))
    return sorted(done.values())
