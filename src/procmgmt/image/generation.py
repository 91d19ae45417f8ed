"""The rendered generation inside the image, laid out as a deployment lays it out.

Each process's files go to ``<store dir>/<hash>-<name>``, the path
:func:`procmgmt.deploy.store.add` would give them with the image's settings (the
same content hash), and the backend's base files to ``<hash>-<backend>-base``: the
files are the ones ``procmgmt switch`` deploys, so what the image runs is what
was tested on a host. Store entries are read-only, as in a real store.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from procmgmt.backends.base import File
from procmgmt.deploy import store
from procmgmt.deploy.build import RenderResult
from procmgmt.image.tree import Tree
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: Modes of store entries: directories and files are not writable.
STORE_DIR_MODE = 0o555


@dataclass(frozen=True)
class Placed:
    """One process of the image's generation: where its store entry is, and the
    facts the backend keeps for its activator (``manifest_extra``)."""

    spec: ProcessSpec
    path: str
    files: tuple[File, ...]
    extra: Mapping[str, Any]

    @property
    def name(self) -> str:
        """The process name."""
        return self.spec.name


@dataclass(frozen=True)
class ImageGeneration:
    """Every process in dependency (rank) order, and the base files' entry."""

    backend: str
    processes: tuple[Placed, ...]
    base_path: str | None
    base_files: tuple[File, ...]


def _put(tree: Tree, root: str, files: Sequence[File], origin: str) -> None:
    dirs = {root}
    for f in files:
        parent = posixpath.dirname(posixpath.join(root, f.path))
        while parent.startswith(root + "/"):
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    for d in sorted(dirs):
        tree.directory(d, STORE_DIR_MODE, origin=origin)
    for f in files:
        path = posixpath.join(root, f.path)
        if f.symlink is not None:
            tree.symlink(path, f.symlink, origin=origin)
        else:
            assert f.content is not None
            tree.file(path, f.content.encode(), f.mode & 0o555, origin=origin)


def place(result: RenderResult, settings: Settings, tree: Tree) -> ImageGeneration:
    """Put every rendered file into ``tree`` at its store path."""
    backend = result.backend.name
    placed = []
    for r in sorted(result.processes, key=lambda r: (r.spec.rank, r.spec.name)):
        path = os.path.join(settings.store_dir,
                            f"{store.content_hash(backend, r.files)}-{r.spec.name}")
        _put(tree, path, r.files, f"generation: {r.spec.name}")
        placed.append(Placed(r.spec, path, tuple(r.files), r.extra))
    base = None
    if result.generation_files:
        digest = store.content_hash(backend, result.generation_files)
        base = os.path.join(settings.store_dir, f"{digest}-{backend}-base")
        _put(tree, base, result.generation_files, f"generation: {backend} base files")
    return ImageGeneration(backend, tuple(placed), base, tuple(result.generation_files))
