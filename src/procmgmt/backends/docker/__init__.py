"""docker backend: one container per process, under a dockerd chosen by a setting
or under runc (rootless for an ordinary user).

:mod:`.backend` translates a process into its container's settings,
:mod:`.plan` turns those into ``docker create`` options and :mod:`.oci` into
runc's ``config.json``, :mod:`.rootfs` builds the image (or the root of a
runc bundle), :mod:`.activator` drives dockerd through the docker client
and :mod:`.runc` drives runc; :mod:`.settings` declares the runtime, socket,
client and extra mounts.
"""

from procmgmt.backends.docker.activator import DockerActivator
from procmgmt.backends.docker.backend import DockerBackend
from procmgmt.backends.docker.runc import RuncActivator

__all__ = ["DockerActivator", "DockerBackend", "RuncActivator"]

#: What the registry (:mod:`procmgmt.backends`) finds.
BACKEND = DockerBackend
