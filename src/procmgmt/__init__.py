"""procmgmt: describe processes once, deploy them with any process manager.

Public API for processes models and constructors::

    from procmgmt import Process, Instance, Credentials, User, Group, Settings
"""

from __future__ import annotations

from procmgmt.model.credentials import Credentials, Group, User
from procmgmt.model.process import Instance, Process
from procmgmt.settings import Settings

__version__ = "0.1.0"

__all__ = ["Credentials", "Group", "Instance", "Process", "Settings", "User", "__version__"]
