"""BSD rc backend: FreeBSD rc.d scripts on top of rc.subr(8).

:mod:`.backend` translates a process into the native model (:mod:`.model`),
:mod:`.script` renders the rc.d script (its shell helpers are the ``.sh``
files of this package), :mod:`.parse` reads the header of an rc script,
:mod:`.rcorder` orders scripts as rcorder(8) does, :mod:`.rcconf` edits
rc.conf and :mod:`.activator` drives the scripts.
"""

from procmgmt.backends.bsdrc.activator import BSDRCActivator
from procmgmt.backends.bsdrc.backend import BSDRCBackend

__all__ = ["BSDRCActivator", "BSDRCBackend"]
