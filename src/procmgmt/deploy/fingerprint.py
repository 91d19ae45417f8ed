"""Fingerprints: digests that differ whenever a value's content does, and the
digest of procmgmt's own code.

Used by the render cache (:mod:`procmgmt.deploy.rendercache`), which must never
take two different inputs for the same: every value is encoded with its type
(a tuple is not a list, ``1`` is not ``"1"``), mappings and sets sorted, and a
value whose behaviour is not covered by the code fingerprint (a function, a
class defined outside procmgmt, such as a model's own readiness class) raises
:class:`UncacheableError` instead of getting a digest.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import os
import sys
import types
from collections.abc import Mapping
from functools import cache
from typing import Any

from procmgmt.backends.base import Backend

_PACKAGE_ROOT = "procmgmt"


class UncacheableError(Exception):
    """A value whose fingerprint could not tell two different values apart."""


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@cache
def _trusted(cls: type) -> bool:
    """A class whose behaviour the generator fingerprint covers: procmgmt's own
    (or a third-party backend's, whose package is fingerprinted too)."""
    top = cls.__module__.split(".", 1)[0]
    return top == _PACKAGE_ROOT or top in _EXTRA_PACKAGES


#: Top-level packages of third-party backends seen in this process (fingerprinted).
_EXTRA_PACKAGES: set[str] = set()


def _encode(value: Any, out: list[str]) -> None:
    """Append an unambiguous encoding of ``value`` to ``out`` (type-tagged,
    length-prefixed, mappings and sets sorted)."""
    kind: type = type(value)
    if value is None:
        out.append("N")
    elif kind is bool:
        out.append("T" if value else "F")
    elif kind is str:
        out.append(f"s{len(value)}:")
        out.append(value)
    elif kind is int:
        out.append(f"i{value};")
    elif kind is float:
        out.append(f"f{value!r};")
    elif kind is tuple or kind is list:
        out.append(f"{'t' if kind is tuple else 'l'}{len(value)}[")
        for item in value:
            _encode(item, out)
        out.append("]")
    elif kind is dict or (isinstance(value, Mapping) and _trusted_mapping(kind)):
        parts = []
        for k, v in value.items():
            sub: list[str] = []
            _encode(k, sub)
            _encode(v, sub)
            parts.append("".join(sub))
        parts.sort()
        out.append(f"m{len(parts)}{{")
        out.extend(parts)
        out.append("}")
    elif kind is frozenset or kind is set:
        items = sorted(fingerprint(v) for v in value)
        out.append(f"S{len(items)}{{{','.join(items)}}}")
    elif isinstance(value, enum.Enum) and _trusted(kind):
        out.append(f"E{kind.__module__}.{kind.__qualname__}:")
        _encode(value.value, out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type) and _trusted(kind):
        out.append(f"D{kind.__module__}.{kind.__qualname__}{{")
        for name in _field_names(kind):
            out.append(name + "=")
            _encode(getattr(value, name), out)
        out.append("}")
    else:
        raise UncacheableError(f"{kind.__module__}.{kind.__qualname__}")


def _trusted_mapping(kind: type) -> bool:
    """Read-only views of a dict (``MappingProxyType``) hold plain data."""
    return kind is types.MappingProxyType or _trusted(kind)


def fingerprint(value: Any) -> str:
    """A digest that differs whenever ``value``'s content does; :class:`UncacheableError`
    for values it cannot see into (functions, classes defined outside procmgmt)."""
    out: list[str] = []
    try:
        _encode(value, out)
    except RecursionError:  # a structure that contains itself (an override dict can)
        raise UncacheableError("a value that contains itself") from None
    return hashlib.sha256("".join(out).encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _hash_tree(h: Any, root: str) -> None:
    """Feed every source and package data file below ``root`` into ``h`` (sorted)."""
    if os.path.isfile(root):
        with open(root, "rb") as f:
            h.update(root.encode() + b"\0" + f.read() + b"\0")
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                h.update(os.path.relpath(path, root).encode() + b"\0" + f.read() + b"\0")


@cache
def generator_fingerprint(*roots: str) -> str:
    """Hash of the code that renders: the files below ``roots`` and the Python
    version. Computed once per process (a few milliseconds)."""
    h = hashlib.sha256(f"{sys.version}\0{sys.executable}\0{sys.platform}\0".encode())
    for root in roots:
        _hash_tree(h, root)
    return h.hexdigest()[:32]


def code_roots(backend: Backend) -> tuple[str, ...]:
    """procmgmt's package dir, plus a third-party backend's top-level package."""
    import procmgmt

    roots = [os.path.dirname(os.path.abspath(procmgmt.__file__))]
    top = type(backend).__module__.split(".", 1)[0]
    if top != _PACKAGE_ROOT:
        module = sys.modules[top]
        path = getattr(module, "__file__", None)
        if path:
            roots.append(os.path.dirname(path) if path.endswith("__init__.py") else path)
        _EXTRA_PACKAGES.add(top)
    return tuple(roots)


__all__ = ["UncacheableError", "code_roots", "fingerprint", "generator_fingerprint"]
