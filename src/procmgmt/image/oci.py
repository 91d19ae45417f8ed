"""The OCI image layout, written as one tar file: ``oci-layout``, ``index.json`` and
``blobs/sha256/<hex>`` for the layers, the config and the manifest.

``umoci`` reads it as ``DIR:TAG`` once unpacked, and ``docker load`` takes the
tar as it is: the tar also holds ``manifest.json``, the docker archive's index
of the same blobs, which Docker before 25 reads (``docker save`` of Docker 25
writes both, too). The tar is reproducible
like the layers (:mod:`.layer`), and it is written to a temporary file beside
the target and renamed, so an interrupted build never leaves half an image.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt.image.layer import EPOCH, Layer, sha256

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
#: The annotation that names an image in an index (``umoci ... DIR:TAG``).
REF_NAME = "org.opencontainers.image.ref.name"
#: uname's machine -> the OCI (Go) architecture name: the closure is the host's binaries.
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
          "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
#: Read by ``docker load`` for the repository:tag of an OCI layout.
DOCKER_NAME = "io.containerd.image.name"


def canonical(doc: Mapping[str, Any]) -> bytes:
    """JSON with sorted keys and no spaces: one byte string per document."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def image_config(*, layers: Sequence[Layer], entrypoint: Sequence[str], env: Sequence[str],
                 user: str, workdir: str, labels: Mapping[str, str],
                 stop_signal: str) -> dict[str, Any]:
    """The image configuration (``application/vnd.oci.image.config.v1+json``)."""
    return {
        "architecture": GOARCH.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Entrypoint": list(entrypoint),
            "Env": list(env),
            "User": user,
            "WorkingDir": workdir,
            "Labels": dict(labels),
            "StopSignal": stop_signal,
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "procmgmt image"}
                    for _ in layers],
    }


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    """A content descriptor of ``data``."""
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def manifest(config: bytes, layers: Sequence[Layer]) -> dict[str, Any]:
    """The image manifest of ``config`` and ``layers``."""
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": descriptor(MEDIA_CONFIG, config),
        "layers": [descriptor(MEDIA_LAYER, layer.blob) for layer in layers],
    }


def index(manifest_bytes: bytes, name: str, tag: str) -> dict[str, Any]:
    """``index.json``: the one manifest, named ``tag`` (umoci) and ``name:tag`` (docker)."""
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [descriptor(MEDIA_MANIFEST, manifest_bytes, annotations={
            REF_NAME: tag, DOCKER_NAME: f"{name}:{tag}"})],
    }


def _blob_path(data: bytes) -> str:
    return "blobs/sha256/" + sha256(data).split(":", 1)[1]


def layout_files(config: Mapping[str, Any], layers: Sequence[Layer], name: str,
                 tag: str) -> dict[str, bytes]:
    """Every file of the layout by its path in it; the manifest's digest is the
    image's digest."""
    config_bytes = canonical(config)
    manifest_bytes = canonical(manifest(config_bytes, layers))
    files = {
        "oci-layout": canonical({"imageLayoutVersion": "1.0.0"}),
        # What docker load reads before Docker 25 (and still reads): the same blobs.
        "manifest.json": json.dumps([{
            "Config": _blob_path(config_bytes),
            "RepoTags": [f"{name}:{tag}"],
            "Layers": [_blob_path(layer.blob) for layer in layers],
        }], separators=(",", ":")).encode(),
        "index.json": canonical(index(manifest_bytes, name, tag)),
        _blob_path(config_bytes): config_bytes,
        _blob_path(manifest_bytes): manifest_bytes,
    }
    for layer in layers:
        files[_blob_path(layer.blob)] = layer.blob
    return files


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name + "/")
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
    return info


def write_tar(path: str, files: Mapping[str, bytes]) -> None:
    """Write the layout ``files`` as a reproducible tar at ``path`` (atomically)."""
    target = os.path.abspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".image-", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as out, \
                tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for d in ("blobs", "blobs/sha256"):
                tar.addfile(_dir_info(d))
            for name in sorted(files):
                info = tarfile.TarInfo(name)
                info.mode, info.mtime, info.size = 0o644, EPOCH, len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
