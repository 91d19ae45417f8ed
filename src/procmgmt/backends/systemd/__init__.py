"""systemd backend: one ``.service`` unit per process, deployed into a real systemd.

:mod:`.backend` translates a process into the native model, :mod:`.unit`
encodes unit files, :mod:`.directives` knows which directives systemd
accepts (``directives.txt``), :mod:`.activator` links units and drives
``systemctl``.
"""

from procmgmt.backends.systemd.activator import SystemdActivator
from procmgmt.backends.systemd.backend import SystemdBackend

__all__ = ["SystemdActivator", "SystemdBackend"]
