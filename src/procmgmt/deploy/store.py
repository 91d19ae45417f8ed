"""The content-addressed store: ``store/<hash>-<name>``, written once, then read-only.

An entry's hash covers every rendered file (path, mode, content or symlink
target), so equal hashes mean the process manager would see exactly the
same thing: that is what lets a switch leave unchanged processes alone.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Sequence

from procmgmt import fsutil
from procmgmt.backends.base import File

HASH_CHARS = 32


def content_hash(kind: str, files: Iterable[File]) -> str:
    """Stable hash of ``files`` (order-independent), base32 like Nix store paths."""
    h = hashlib.sha256()
    h.update(f"procmgmt-store-v1\0{kind}\0".encode())
    for f in sorted(files, key=lambda f: f.path):
        h.update(f.path.encode() + b"\0")
        if f.symlink is not None:
            h.update(b"L\0" + f.symlink.encode() + b"\0")
        else:
            assert f.content is not None
            h.update(f"F{f.mode:o}\0".encode() + f.content.encode() + b"\0")
    return base64.b32encode(h.digest()).decode().lower().rstrip("=")[:HASH_CHARS]


def _make_read_only(root: str) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                mode = stat.S_IMODE(os.lstat(p).st_mode)
                os.chmod(p, mode & ~0o222)
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o555)
    os.chmod(root, 0o555)


def _make_writable(root: str) -> None:
    for dirpath, dirnames, _ in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


def write_files(root: str, files: Sequence[File]) -> None:
    """Materialize ``files`` below ``root`` (which must exist)."""
    for f in files:
        target = os.path.join(root, f.path)
        fsutil.ensure_dir(os.path.dirname(target))
        if f.symlink is not None:
            os.symlink(f.symlink, target)
        else:
            assert f.content is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(f.content)
            os.chmod(target, f.mode)


def add(store_dir: str, name: str, kind: str, files: Sequence[File]) -> str:
    """Store ``files`` as one entry and return its path (existing entries are reused)."""
    digest = content_hash(kind, files)
    path = os.path.join(store_dir, f"{digest}-{name}")
    if os.path.isdir(path):
        return path
    fsutil.ensure_dir(store_dir)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=store_dir)
    try:
        os.chmod(tmp, 0o755)
        write_files(tmp, files)
        _make_read_only(tmp)
        try:
            os.rename(tmp, path)
        except OSError:
            if not os.path.isdir(path):  # lost a race with an identical writer: fine
                raise
            remove(tmp)
    except BaseException:
        if os.path.exists(tmp):
            remove(tmp)
        raise
    return path


def entry_hash(path: str) -> str:
    """The hash part of a store path."""
    return os.path.basename(path).split("-", 1)[0]


def remove(path: str) -> None:
    """Delete a store entry (used by gc only)."""
    _make_writable(path)
    shutil.rmtree(path)


def entries(store_dir: str) -> list[str]:
    """Every store entry (temporary and partial writes excluded)."""
    if not os.path.isdir(store_dir):
        return []
    return sorted(os.path.join(store_dir, n) for n in os.listdir(store_dir)
                  if not n.startswith("."))
