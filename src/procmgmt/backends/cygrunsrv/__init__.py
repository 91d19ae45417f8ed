"""cygrunsrv backend: Windows services for Cygwin programs.

:mod:`.backend` translates a process into a service, :mod:`.params` renders
its cygrunsrv options, :mod:`.args` encodes ``--args`` as cygrunsrv splits
it, :mod:`.activator` drives ``cygrunsrv``.
"""

from procmgmt.backends.cygrunsrv.activator import CygrunsrvActivator
from procmgmt.backends.cygrunsrv.backend import CygrunsrvBackend

__all__ = ["CygrunsrvActivator", "CygrunsrvBackend"]
