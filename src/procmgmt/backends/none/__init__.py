"""``-P none``: the model's processes as backend-agnostic JSON specs, nothing deployable.

nix-processmgmt's ``processManager = null``: ``procmgmt build -P none`` and
``procmgmt generate -P none`` write one ``<name>.json`` per process (its
properties as the model gave them, see :mod:`procmgmt.agnostic`), which
``procmgmt generate-config -P BACKEND`` translates later, maybe on another
machine. An ordinary backend otherwise: it renders through the same
pipeline and has golden cases; its capabilities say it does not deploy.
"""

from procmgmt.backends.none.backend import NoneBackend

BACKEND = NoneBackend
