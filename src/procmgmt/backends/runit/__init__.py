"""runit backend: one service directory per process, one runsvdir per profile.

:mod:`.backend` translates a process, :mod:`.service` renders its service
directory, :mod:`.activator` links it into procmgmt's runsvdir and drives
``sv``; :mod:`.runsvdir` starts and finds that runsvdir.
"""

from procmgmt.backends.runit.activator import RunitActivator
from procmgmt.backends.runit.backend import RunitBackend

__all__ = ["RunitActivator", "RunitBackend"]

#: What the registry (:mod:`procmgmt.backends`) finds.
BACKEND = RunitBackend
