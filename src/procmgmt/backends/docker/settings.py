"""The docker backend's own settings: which runtime, which dockerd, which client,
what else to mount.

Which runtime and which dockerd the containers go to are deployment settings,
not part of the generated files: the same generation can be deployed into the
system's dockerd, into one that procmgmt runs from the catalogue
(:mod:`procmgmt.services.dockerd`), each on its own socket, or straight to
runc without any daemon (the only way for an ordinary user here: Debian's
dockerd runs as root only).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from procmgmt.errors import UsageError
from procmgmt.settings import SettingField

#: Who runs the containers: dockerd, or runc from OCI bundles.
RUNTIME = SettingField(
    "docker_runtime", None, "PROCMGMT_DOCKER_RUNTIME", "str",
    "what runs the containers: docker (a dockerd, root only) or runc (OCI bundles, "
    "rootless for an ordinary user); default docker as root, runc otherwise")
#: The runtimes :data:`RUNTIME` names.
RUNTIMES = ("docker", "runc")
#: The socket of the dockerd to deploy into (the system's by default).
SOCKET = SettingField(
    "docker_socket", None, "PROCMGMT_DOCKER_SOCKET", "path",
    "unix socket of the dockerd that runs the containers (e.g. a catalogue "
    "dockerd's <runtime_dir>/<instance>/docker.sock)",
    default="/var/run/docker.sock")
#: The docker client; Debian's /usr/bin/docker matches Debian's dockerd.
CLIENT = SettingField(
    "docker_client", None, "PROCMGMT_DOCKER_CLIENT", "path",
    "docker client program (default: /usr/bin/docker, the one packaged with "
    "dockerd, else docker on PATH)")
#: Host paths every container sees read-only besides /usr.
MOUNTS = SettingField(
    "docker_mounts", None, "PROCMGMT_DOCKER_MOUNTS", "str",
    "colon-separated absolute host paths mounted read-only at the same place in "
    "every container, for programs outside /usr (an interpreter under /opt, a "
    "checkout)")

SETTINGS = (RUNTIME, SOCKET, CLIENT, MOUNTS)


def runtime(environ: Mapping[str, str] | None = None) -> str:
    """``PROCMGMT_DOCKER_RUNTIME``, else docker as root and runc for anyone else."""
    chosen = RUNTIME.read(environ)
    if not chosen:
        return "docker" if os.geteuid() == 0 else "runc"
    if chosen not in RUNTIMES:
        raise UsageError(f"{RUNTIME.env}: {chosen!r} is not a runtime (docker or runc)")
    return str(chosen)


def extra_mounts(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The paths of ``PROCMGMT_DOCKER_MOUNTS``, normalized, in the order given; a
    relative path is refused (it would mean a different place inside a container)."""
    raw = MOUNTS.read(environ)
    if not raw:
        return ()
    paths: list[str] = []
    for part in str(raw).split(":"):
        if not part:
            continue
        if not os.path.isabs(part):
            raise UsageError(f"{MOUNTS.env}: {part!r} is not an absolute path")
        norm = os.path.normpath(part)
        if norm not in paths:
            paths.append(norm)
    return tuple(paths)
