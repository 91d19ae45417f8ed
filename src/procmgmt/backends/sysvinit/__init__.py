"""sysvinit backend: self-contained LSB init scripts plus rcN.d S/K links.

:mod:`.backend` translates a process into the native model and renders the
files, :mod:`.script` builds the init script's text (its shell helpers are
the ``.sh`` files of this package), :mod:`.activator` runs the scripts.
"""

from procmgmt.backends.sysvinit.activator import SysVInitActivator
from procmgmt.backends.sysvinit.backend import SysVInitBackend

__all__ = ["SysVInitActivator", "SysVInitBackend"]
