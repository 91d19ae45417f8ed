"""Backend registry: built-in backends by name, plus ``procmgmt.backends`` entry points.

Modules are imported lazily so that building for one backend never imports
the others.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points

from procmgmt.backends.base import Backend
from procmgmt.errors import UsageError

#: name -> "module:Class" of the built-in backends.
BUILTIN: dict[str, str] = {
    "sysvinit": "procmgmt.backends.sysvinit:SysVInitBackend",
    "supervisord": "procmgmt.backends.supervisord:SupervisordBackend",
    "systemd": "procmgmt.backends.systemd:SystemdBackend",
    "bsdrc": "procmgmt.backends.bsdrc:BSDRCBackend",
    "launchd": "procmgmt.backends.launchd:LaunchdBackend",
    "cygrunsrv": "procmgmt.backends.cygrunsrv:CygrunsrvBackend",
}


def _available() -> dict[str, str]:
    found = {}
    for name, target in BUILTIN.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module) is not None:
            found[name] = target
    for ep in entry_points(group="procmgmt.backends"):
        found.setdefault(ep.name, ep.value)
    return found


def backend_names() -> list[str]:
    """Names of every backend that can be loaded."""
    return sorted(_available())


def get_backend(name: str) -> Backend:
    """An instance of the backend called ``name``; a clear error if unknown."""
    available = _available()
    target = available.get(name)
    if target is None:
        raise UsageError(
            f"unknown process manager {name!r}; choose one of: {', '.join(sorted(available))}"
        )
    module_name, _, cls_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    backend = cls()
    assert isinstance(backend, Backend)
    return backend
