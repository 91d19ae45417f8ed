"""The file tree of an image layer: what goes where, with which mode and owner.

Entries are described, not copied: a host file is read only when the layer is
written, so a tree is cheap to build and to compare. Every parent directory
exists (created 0755 root:root when nobody said otherwise), and a path given
twice must mean the same thing: two different contents for one path are an
error naming both origins, never a silent last-one-wins.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, replace

from procmgmt.errors import UsageError

DIR = "dir"
FILE = "file"
SYMLINK = "symlink"


@dataclass(frozen=True)
class Entry:
    """One path of the image: a directory, a file (bytes, or a host file read at
    write time) or a symlink."""

    kind: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    #: File content given inline.
    data: bytes | None = None
    #: Host path whose content the file gets (read when the layer is written).
    source: str | None = None
    #: Symlink target, as written.
    target: str | None = None
    #: Why the entry is there (shown when it clashes, and in closure listings).
    origin: str = ""

    def same(self, other: Entry) -> bool:
        """Equal apart from the origin."""
        return replace(self, origin="") == replace(other, origin="")


def normal(path: str) -> str:
    """``path`` as an absolute, normalised image path (no trailing slash)."""
    if not path.startswith("/"):
        raise ValueError(f"image paths are absolute: {path!r}")
    return posixpath.normpath(path).replace("//", "/")


class Tree:
    """The paths of one layer."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def __contains__(self, path: str) -> bool:
        return normal(path) in self._entries

    def get(self, path: str) -> Entry | None:
        """The entry at ``path``, if any."""
        return self._entries.get(normal(path))

    def items(self) -> Iterator[tuple[str, Entry]]:
        """Every (path, entry), parents before children (sorted by path)."""
        for path in sorted(self._entries):
            yield path, self._entries[path]

    def __len__(self) -> int:
        return len(self._entries)

    def _parents(self, path: str) -> None:
        parent = posixpath.dirname(path)
        if parent == "/" or parent in self._entries:
            if parent != "/" and self._entries[parent].kind != DIR:
                raise UsageError(f"image path {parent} is a {self._entries[parent].kind} "
                                 f"({self._entries[parent].origin}), yet {path} goes below it")
            return
        self._parents(parent)
        self._entries[parent] = Entry(DIR, 0o755, origin="parent directory")

    def add(self, path: str, entry: Entry) -> None:
        """Put ``entry`` at ``path``; the same entry twice is fine, a different one
        is a UsageError naming both origins. A directory given explicitly replaces
        an implied parent directory (its mode and owner win)."""
        path = normal(path)
        if path == "/":
            raise ValueError("the image root is not an entry")
        old = self._entries.get(path)
        if old is not None and not old.same(entry):
            if old.kind == DIR and entry.kind == DIR and old.origin == "parent directory":
                self._entries[path] = entry
                return
            raise UsageError(f"image path {path} is wanted twice, differently: as a "
                             f"{old.kind} ({old.origin}) and as a {entry.kind} ({entry.origin})")
        self._parents(path)
        if old is None:
            self._entries[path] = entry

    def directory(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0,
                  origin: str = "") -> None:
        """A directory."""
        self.add(path, Entry(DIR, mode, uid, gid, origin=origin))

    def file(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0,
             origin: str = "") -> None:
        """A file with the given content."""
        self.add(path, Entry(FILE, mode, uid, gid, data=data, origin=origin))

    def host_file(self, path: str, source: str, mode: int, origin: str = "") -> None:
        """A copy of host file ``source`` (root-owned, the host's permission bits)."""
        self.add(path, Entry(FILE, mode, source=source, origin=origin))

    def symlink(self, path: str, target: str, origin: str = "") -> None:
        """A symbolic link."""
        self.add(path, Entry(SYMLINK, 0o777, target=target, origin=origin))
