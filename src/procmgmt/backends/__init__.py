"""Backend registry: every backend is found, none is listed by hand.

A backend is a module or package directly under :mod:`procmgmt.backends`
that defines a module-level ``BACKEND`` (its :class:`~procmgmt.backends.base.Backend`
subclass), or a third-party one registered under the ``procmgmt.backends``
entry point group (the entry point names the class, or a module defining
``BACKEND``). Everything that used to list backends by name (model
validation of ``overrides``, ``-P`` choices, the capability tables, the
golden, ordering and injection tests) asks this registry, so adding a
backend is adding one package (see docs/writing-a-backend.md).

Modules whose name starts with ``_`` are helpers and are not imported here.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Mapping
from importlib.metadata import entry_points
from types import MappingProxyType, ModuleType

from procmgmt.backends.base import Backend, Capabilities
from procmgmt.errors import UsageError

#: Entry point group of third-party backends.
ENTRY_POINT_GROUP = "procmgmt.backends"


def _backend_class(obj: object, where: str) -> type[Backend]:
    """``obj`` itself when it is a Backend subclass, else its ``BACKEND``."""
    cls = getattr(obj, "BACKEND", obj) if isinstance(obj, ModuleType) else obj
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise UsageError(f"{where}: BACKEND must be a procmgmt.backends.base.Backend "
                         f"subclass, got {cls!r}")
    return cls


@functools.cache
def registry() -> Mapping[str, type[Backend]]:
    """Backend name -> class, sorted by name: the built-in ones, then entry points
    (a built-in name wins). Cached (read-only): discovery imports every backend
    module once."""
    found: dict[str, type[Backend]] = {}
    for info in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        if info.name.rpartition(".")[2].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "BACKEND"):
            cls = _backend_class(module, info.name)
            found.setdefault(cls.name, cls)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        where = f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin names itself instead of a traceback
            raise UsageError(f"{where}: cannot be loaded: {exc}") from exc
        cls = _backend_class(obj, where)
        if cls.name != ep.name:
            raise UsageError(f"{where}: the class is named {cls.name!r}, not {ep.name!r}")
        found[ep.name] = cls
    return MappingProxyType(dict(sorted(found.items())))


def backend_names() -> list[str]:
    """Names of every backend that can be loaded, sorted."""
    return list(registry())


def deployable_names() -> list[str]:
    """Backends whose output can be deployed (all but generate-only ones such as ``none``)."""
    return [name for name, cls in registry().items() if cls.capabilities.deploys]


def capabilities_of(name: str) -> Capabilities | None:
    """The capabilities of backend ``name``; None for a name no backend has."""
    cls = registry().get(name)
    return cls.capabilities if cls is not None else None


def get_backend(name: str) -> Backend:
    """An instance of the backend called ``name``; a clear error if unknown."""
    cls = registry().get(name)
    if cls is None:
        raise UsageError(f"unknown process manager {name!r}; choose one of: "
                         f"{', '.join(backend_names())}")
    return cls()
