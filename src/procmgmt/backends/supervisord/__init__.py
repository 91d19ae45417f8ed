"""supervisord backend: one ``[program:<name>]`` file per process, one supervisord per profile.

One module per job: :mod:`.format` (values supervisord's parser reads back
exactly), :mod:`.backend` (translate, render, validate), :mod:`.activator`
(deploying a generation over XML-RPC, :mod:`.control`, with the conf.d
links of :mod:`.links`), :mod:`.embedded` (procmgmt's own supervisord),
:mod:`.external` (deploying into someone else's) and :mod:`.runner`
(``procmgmt run``).
"""

from procmgmt.backends.supervisord.activator import SupervisordActivator
from procmgmt.backends.supervisord.backend import SupervisordBackend
from procmgmt.backends.supervisord.runner import run_stateless

__all__ = ["SupervisordActivator", "SupervisordBackend", "run_stateless"]

#: What the registry (:mod:`procmgmt.backends`) finds.
BACKEND = SupervisordBackend
