"""The OCI runtime configuration (``config.json``) of a container run by runc.

The docker backend's containers run under dockerd (``docker create``, see
:mod:`.plan`) or, without dockerd, under runc from an OCI bundle; both are
made from the same native model, so a process looks the same either way:
no network namespace (``--network host``), no pid namespace (``--pid
host``: pid files and readiness pids are the host's, and ``/proc`` is the
host's, bound in), the host's ``/usr`` and account files read-only, the
state directories read-write.

:func:`runc_block` is pure (the build writes it into the plan file, so the
golden files show it); :func:`config` adds at activation what only the
machine knows: numeric user ids (the account may have been created by this
switch), the user namespace of a rootless run (the deploying user is the
container's root; without newuidmap nothing else can be mapped), the
cgroup (root only: an ordinary user may not create one under cgroup v1,
and runc then runs the container without), the proxy's mount and the hash
annotation.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from procmgmt.errors import DeployError

#: Docker's default capabilities (moby's oci/caps/defaults.go): what a root process
#: in a docker container may do (switch users, chown...), so the proxy's
#: ``initialize`` and user change work the same under runc.
DOCKER_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
               "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
               "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
#: The OCI runtime spec version runc 1.1 writes (``runc spec``).
OCI_VERSION = "1.0.2-dev"
#: Annotation carrying the content hash of the process's files (docker's label).
HASH_ANNOTATION = "procmgmt.hash"
#: Namespaces of every container: no network and no pid namespace (module doc).
NAMESPACES = ("ipc", "uts", "mount")
#: What the kernel gives a container besides the binds (as ``runc spec`` writes them).
SYSTEM_MOUNTS: tuple[dict[str, Any], ...] = (
    # The host's /proc: a fresh procfs needs a pid namespace of the container's own.
    {"destination": "/proc", "type": "bind", "source": "/proc",
     "options": ["rbind", "nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    # Bound, not mounted: sysfs needs a network namespace of the container's own.
    {"destination": "/sys", "type": "none", "source": "/sys",
     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]},
)
#: Paths hidden and made read-only, as ``runc spec`` does.
MASKED = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi")
READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def bind(source: str, target: str, readonly: bool) -> dict[str, Any]:
    """An OCI bind mount (recursive, as docker's ``--mount type=bind``)."""
    return {"destination": target, "type": "bind", "source": source,
            "options": ["rbind", "ro"] if readonly else ["rbind"]}


def runc_block(native: Mapping[str, Any]) -> dict[str, Any]:
    """The build's part of the config: command, environment, working directory,
    binds, stop signal and timeout (the proxy's mount and command are added at
    activation, as for docker)."""
    env = sorted(f"{k}={v}" for k, v in (native.get("environment") or {}).items())
    return {
        "args": [str(w) for w in native.get("command") or []],
        "env": env,
        "cwd": str(native.get("workdir") or "/"),
        "mounts": [bind(str(m["source"]), str(m["target"]), bool(m.get("readonly")))
                   for m in native.get("mounts") or []],
        "stop_signal": str(native.get("stop_signal", "TERM")),
        "stop_timeout": int(native.get("stop_timeout", 10)),
    }


@dataclass(frozen=True)
class Identity:
    """Who the container's process is: inside ids, and the host ids a rootless run maps
    to the container's root (None: not rootless)."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    host: tuple[int, int] | None = None


def identity(user: str | None, rootless: bool) -> Identity:
    """The process's ids: ``user``'s looked up on the host now (the switch may just
    have created the account), root without one; rootless, the deploying user is
    the container's root and no other user can be mapped."""
    if rootless:
        if user and user != pwd.getpwuid(os.geteuid()).pw_name:
            raise DeployError(f"cannot run a container as {user!r} without root: rootless "
                              "runc maps only your own uid (deploy as root, or without "
                              "user changes)")
        return Identity(0, 0, host=(os.geteuid(), os.getegid()))
    if not user:
        return Identity(0, 0)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise DeployError(f"cannot run a container as {user!r}: no such user") from None
    groups = tuple(sorted(set(os.getgrouplist(user, entry.pw_gid)) - {entry.pw_gid}))
    return Identity(entry.pw_uid, entry.pw_gid, groups)


def capabilities(ident: Identity) -> dict[str, list[str]]:
    """Docker's default set for root; another user keeps only the bounding set, as
    docker does (its effective and permitted sets are empty)."""
    caps = list(DOCKER_CAPS)
    if ident.uid == 0:
        return {"bounding": caps, "effective": caps, "permitted": caps}
    return {"bounding": caps, "effective": [], "permitted": []}


def config(block: Mapping[str, Any], *, rootfs: str, ident: Identity, hostname: str,
           args: Sequence[str], extra_mounts: Sequence[dict[str, Any]] = (),
           cgroups_path: str | None = None,
           annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The whole ``config.json``; ``rootfs`` is shared by every container and read-only."""
    user: dict[str, Any] = {"uid": ident.uid, "gid": ident.gid}
    if ident.groups:
        user["additionalGids"] = list(ident.groups)
    linux: dict[str, Any] = {
        "namespaces": [{"type": t} for t in NAMESPACES],
        "maskedPaths": list(MASKED),
        "readonlyPaths": list(READONLY),
    }
    if ident.host is not None:
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": ident.host[0], "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": ident.host[1], "size": 1}]
    if cgroups_path:
        linux["cgroupsPath"] = cgroups_path
    return {
        "ociVersion": OCI_VERSION,
        "process": {"terminal": False, "user": user, "args": list(args),
                    "env": list(block["env"]), "cwd": block["cwd"],
                    "capabilities": capabilities(ident), "noNewPrivileges": False},
        "root": {"path": rootfs, "readonly": True},
        "hostname": hostname,
        "mounts": [*SYSTEM_MOUNTS, *block["mounts"], *extra_mounts],
        "annotations": dict(annotations or {}),
        "linux": linux,
    }


def host_network(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` without a network namespace (``docker run --network host``)."""
    linux = doc.setdefault("linux", {})
    linux["namespaces"] = [n for n in linux.get("namespaces") or [] if n["type"] != "network"]
    return doc
