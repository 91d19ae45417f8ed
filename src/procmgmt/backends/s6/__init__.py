"""s6 backend: one s6 service directory per process, one ``s6-svscan`` per profile.

One module per job: :mod:`.servicedir` (the files of a service directory:
``run``, ``data/start``, ``data/check``, ``log/run``), :mod:`.backend`
(translate, render, validate), :mod:`.svscan` (procmgmt's own s6-svscan:
started, found again, shut down) and :mod:`.activator` (installing service
directories into the scan dir and driving them with ``s6-svc``).
"""

from procmgmt.backends.s6.activator import S6Activator
from procmgmt.backends.s6.backend import S6Backend

__all__ = ["S6Activator", "S6Backend"]

#: What the registry (:mod:`procmgmt.backends`) finds.
BACKEND = S6Backend
