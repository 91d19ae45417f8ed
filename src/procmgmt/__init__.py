"""procmgmt: describe processes once, deploy them with any process manager.

Public API for processes models and constructors::

    from procmgmt import Process, Instance, Credentials, User, Group, Settings

The names are imported on first use (PEP 562), so starting the command line
costs nothing before it can handle Ctrl-C: an interrupt in the first instant
ends with "interrupted", never with a traceback from the middle of an import.
"""

from __future__ import annotations

import importlib

#: Not typing.TYPE_CHECKING: importing typing alone costs more than the rest of this file.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from procmgmt.model.credentials import Credentials, Group, User
    from procmgmt.model.process import Instance, Process
    from procmgmt.settings import Settings

__version__ = "0.1.0"

__all__ = ["Credentials", "Group", "Instance", "Process", "Settings", "User", "__version__"]

_PUBLIC = {
    "Credentials": "procmgmt.model.credentials",
    "Group": "procmgmt.model.credentials",
    "User": "procmgmt.model.credentials",
    "Instance": "procmgmt.model.process",
    "Process": "procmgmt.model.process",
    "Settings": "procmgmt.settings",
}


def __getattr__(name: str) -> object:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'procmgmt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
