"""The image every container of the docker backend starts from: an almost empty root.

There is no registry to pull from, and a process needs nothing of its own in
the image: the host's ``/usr`` is mounted read-only into each container (as
the original mounts ``/nix/store``), together with the state directories.
The image holds only the mount points and the top-level links of the
host's layout: on a merged-``/usr`` system (Debian 12) ``/bin``, ``/sbin``,
``/lib`` and ``/lib64`` are links into ``usr/``, which the image repeats;
where one is a real directory it is mounted read-only instead
(:func:`host_dirs`).

The layer is a tar built here with :mod:`tarfile` (fixed owners, modes and
times, so the same layout gives the same bytes) and ``docker import``\\ ed;
its tag carries the hash of the layout, so an image is built once per
layout and dockerd keeps it between deployments. Under runc the same layout
is written out as each container's root directory (:func:`materialize`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass

#: The image's repository name; the tag is the layout hash.
REPOSITORY = "procmgmt-rootfs"
#: Label carrying the full layout hash (checked before an image is reused).
LABEL = "procmgmt.rootfs"
#: Top-level paths of the host that the programs may need besides ``/usr``.
TOP_LEVEL = ("bin", "sbin", "lib", "lib64")
#: Empty directories of the image (mount points and what programs expect).
DIRECTORIES = ("dev", "etc", "home", "proc", "root", "run", "sys", "tmp", "usr", "var",
               "var/tmp")
#: World-writable sticky directories.
STICKY = ("tmp", "var/tmp")
#: Empty files of the image: mount points of the host's account files.
FILES = ("etc/passwd", "etc/group")


@dataclass(frozen=True)
class Layout:
    """What the image contains: directories, empty files and links (name -> target)."""

    directories: tuple[str, ...]
    files: tuple[str, ...]
    links: tuple[tuple[str, str], ...]

    def digest(self) -> str:
        """The sha256 of the layout (what the tag and label carry)."""
        text = json.dumps({"dirs": self.directories, "files": self.files,
                           "links": self.links}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def tag(self) -> str:
        """``procmgmt-rootfs:<first 16 hex digits of the digest>``."""
        return f"{REPOSITORY}:{self.digest()[:16]}"


def host_links(root: str = "/") -> tuple[tuple[str, str], ...]:
    """The top-level links of the host into ``usr/`` (merged /usr), as (name, target)."""
    links = []
    for name in TOP_LEVEL:
        path = os.path.join(root, name)
        if os.path.islink(path):
            target = os.readlink(path)
            if target.lstrip("/").startswith("usr/"):
                links.append((name, target.lstrip("/")))
    return tuple(links)


def host_dirs(root: str = "/") -> tuple[str, ...]:
    """Top-level directories of the host (not links) that are mounted read-only,
    absolute: ``/usr`` always, ``/bin`` and the others where /usr is not merged."""
    linked = {name for name, _ in host_links(root)}
    dirs = ["/usr"]
    for name in TOP_LEVEL:
        path = os.path.join(root, name)
        if name not in linked and os.path.isdir(path) and not os.path.islink(path):
            dirs.append(f"/{name}")
    return tuple(dirs)


def layout(root: str = "/") -> Layout:
    """The image for this host."""
    return Layout(directories=DIRECTORIES, files=FILES, links=host_links(root))


def tar_bytes(spec: Layout) -> bytes:
    """The image's single layer: a tar of the layout, the same bytes every time."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, target: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = kind, mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.linkname = target
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)

        for d in spec.directories:
            add(d, tarfile.DIRTYPE, 0o1777 if d in STICKY else 0o755)
        for f in spec.files:
            add(f, tarfile.REGTYPE, 0o644)
        for name, target in spec.links:
            add(name, tarfile.SYMTYPE, 0o777, target)
    return buf.getvalue()


def materialize(spec: Layout, path: str) -> None:
    """Write the layout as the directory ``path`` (which must not exist), with the
    tar's modes whatever the umask: a container's root, owned by whoever runs runc."""
    os.mkdir(path)
    os.chmod(path, 0o755)
    for d in spec.directories:
        target = os.path.join(path, d)
        os.mkdir(target)
        os.chmod(target, 0o1777 if d in STICKY else 0o755)
    for f in spec.files:
        target = os.path.join(path, f)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.chmod(target, 0o644)
    for name, target in spec.links:
        os.symlink(target, os.path.join(path, name))
