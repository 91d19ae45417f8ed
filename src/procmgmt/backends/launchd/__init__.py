"""launchd backend: one property list per process, loaded with ``launchctl``.

:mod:`.backend` translates a process into a job, :mod:`.plist` renders and
checks the property list against :mod:`.schema`, :mod:`.activator` drives
``launchctl``.
"""

from procmgmt.backends.launchd.activator import LaunchdActivator
from procmgmt.backends.launchd.backend import LaunchdBackend

__all__ = ["LaunchdActivator", "LaunchdBackend"]
