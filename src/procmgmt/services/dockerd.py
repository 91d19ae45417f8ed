"""dockerd as a managed process: a Docker daemon of its own, e.g. for the docker backend.

::

    from procmgmt import Instance
    from procmgmt.services.dockerd import dockerd, dockerd_metadata

    def processes(settings):
        proc = dockerd(settings)()
        return {"dockerd": Instance(proc, **dockerd_metadata(settings))}

Deploy the containers of another model into it with
``PROCMGMT_DOCKER_SOCKET=<socket> procmgmt switch -P docker MODEL``.

Everything two daemons would fight over is a parameter, derived from the
instance name by default, so instances coexist with each other and with a
system-wide dockerd (whose ``/var/lib/docker`` and ``/var/run/docker.sock``
are never touched):

- ``data_root`` (images, containers): ``<lib_dir>/<instance>``;
- ``exec_root`` (runtime state, the containerd dockerd starts for itself and
  its sockets): ``<runtime_dir>/<instance>/exec``, short, because unix
  socket paths below it are limited to 107 bytes;
- ``pid_file`` and ``socket``: ``<runtime_dir>/<instance>/dockerd.pid`` and
  ``.../docker.sock``;
- ``--config-file``: ``<runtime_dir>/<instance>/daemon.json`` holding ``{}``
  (written by ``initialize``), so ``/etc/docker/daemon.json`` does not leak
  in; ``--containerd-namespace`` and ``--containerd-plugins-namespace``
  are the instance name, so two instances that end up on one system
  containerd keep apart.

The networking defaults suit containers run with ``--network host`` (the
docker backend's): ``--bridge=none``, ``--iptables=false``,
``--ip-masq=false`` (no bridge, no firewall rules on the host). Storage is
``vfs`` (works on any filesystem, including overlayfs-in-overlayfs where
overlay2 does not; slow and space-hungry, fine for small images).

dockerd runs as root in the foreground (no daemon mode); root only: a
rootless dockerd needs rootlesskit, which this constructor does not set up
(it refuses an unprivileged deployment with a ValueError). Readiness is
``docker -H unix://<socket> version`` answering for the server. On SIGTERM
dockerd stops its containers (``--shutdown-timeout`` seconds each) and exits.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from procmgmt.model.process import Process
from procmgmt.readiness import Command, Readiness
from procmgmt.services import _common
from procmgmt.services._snippets import chain, make_dirs, write_file
from procmgmt.settings import Settings

KIND = "dockerd"
#: Seconds dockerd waits for each container to stop on its own shutdown.
SHUTDOWN_TIMEOUT = 15


@dataclass(frozen=True)
class DockerdPaths:
    """Where one dockerd instance keeps its files."""

    name: str
    data_root: str
    exec_root: str
    pid_file: str
    socket: str
    config_file: str


def paths(settings: Settings, name: str, *, data_root: str | None = None,
          exec_root: str | None = None, pid_file: str | None = None,
          socket: str | None = None) -> DockerdPaths:
    """The paths of instance ``name``: the given ones, else derived from the name."""
    dirs = _common.instance_dirs(settings, name)
    return DockerdPaths(
        name=name,
        data_root=data_root or dirs.lib,
        exec_root=exec_root or os.path.join(dirs.runtime, "exec"),
        pid_file=pid_file or os.path.join(dirs.runtime, "dockerd.pid"),
        socket=socket or os.path.join(dirs.runtime, "docker.sock"),
        config_file=os.path.join(dirs.runtime, "daemon.json"),
    )


def client_program() -> str:
    """The docker client packaged with dockerd (Debian: /usr/bin/docker)."""
    return _common.find_program("/usr/bin/docker", "docker")


def dockerd_metadata(settings: Settings, instance_suffix: str = "",
                     instance_name: str | None = None, **given: str | None) -> dict[str, Any]:
    """Instance metadata: ``socket`` and ``data_dir`` (both checked for sharing)."""
    name = _common.instance_name(KIND, instance_suffix, instance_name)
    p = paths(settings, name, **given)
    return {"socket": p.socket, "data_dir": p.data_root}


def dockerd(settings: Settings) -> Callable[..., Process]:
    """Constructor: ``dockerd(settings)(...)`` is one Docker daemon."""

    def instance(
        *,
        instance_suffix: str = "",
        instance_name: str | None = None,
        data_root: str | None = None,
        exec_root: str | None = None,
        pid_file: str | None = None,
        socket: str | None = None,
        storage_driver: str = "vfs",
        shutdown_timeout: int = SHUTDOWN_TIMEOUT,
        extra_args: Sequence[str] = (),
        dependencies: Sequence[Process] = (),
        readiness: Readiness | None = None,
        program: str | None = None,
    ) -> Process:
        """One dockerd; the paths default to the instance's (see the module)."""
        if settings.calling_user != "root":
            raise ValueError("dockerd runs as root only (a rootless dockerd is not "
                             "supported): deploy it as root")
        name = _common.instance_name(KIND, instance_suffix, instance_name)
        p = paths(settings, name, data_root=data_root, exec_root=exec_root,
                  pid_file=pid_file, socket=socket)
        server = program or _common.find_program("/usr/sbin/dockerd", "dockerd")
        namespace = f"{name}-{hashlib.sha256(p.data_root.encode()).hexdigest()[:8]}"
        args = ["--data-root", p.data_root, "--exec-root", p.exec_root,
                "--pidfile", p.pid_file, "-H", f"unix://{p.socket}",
                "--config-file", p.config_file,
                "--containerd-namespace", namespace, "--containerd-plugins-namespace",
                f"{namespace}-plugins", f"--storage-driver={storage_driver}",
                "--iptables=false", "--ip-masq=false", "--bridge=none",
                f"--shutdown-timeout={shutdown_timeout}", *extra_args]
        runtime = {os.path.dirname(p.pid_file), os.path.dirname(p.socket),
                   os.path.dirname(p.config_file)}
        initialize = chain(
            make_dirs(p.data_root, p.exec_root, mode="0710"),
            make_dirs(*sorted(runtime), mode="0755"),
            write_file(p.config_file, json.dumps({}) + "\n", mode="0644"),
        )
        check = readiness or Command(
            command=[client_program(), "-H", f"unix://{p.socket}", "version", "--format",
                     "{{.Server.Version}}"], interval=0.2, timeout=60)
        return Process(
            name=name,
            instance_name=name,
            description=f"Docker daemon {name}",
            initialize=initialize,
            foreground_process=server,
            foreground_process_args=args,
            daemon=None,
            dependencies=list(dependencies),
            readiness=check,
            # SIGTERM: dockerd stops every running container (each with its own stop
            # timeout, at most --shutdown-timeout) and its containerd, then exits
            # (dockerd(8)); SIGKILL would leave containerd and the shims behind.
            stop_signal="TERM",
            stop_timeout=shutdown_timeout + 30,
        )

    return instance
