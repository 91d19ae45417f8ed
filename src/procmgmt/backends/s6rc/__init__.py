"""s6-rc backend: s6-rc-compile source definition directories, one pipeline per process.

One module per job: :mod:`.source` (the service definition directories of a
process and the ``default`` bundle), :mod:`.sourcecheck` (the rules
s6-rc-compile applies to a source tree, checked in Python because
s6-rc-compile is not packaged here), :mod:`.backend` (translate, render,
validate), :mod:`.update` (per-service content hashes and s6-rc-update's
conversion file) and :mod:`.activator` (compile, init or update, change).
"""

from procmgmt.backends.s6rc.activator import S6RcActivator
from procmgmt.backends.s6rc.backend import S6RcBackend

__all__ = ["S6RcActivator", "S6RcBackend"]

#: What the registry (:mod:`procmgmt.backends`) finds.
BACKEND = S6RcBackend
