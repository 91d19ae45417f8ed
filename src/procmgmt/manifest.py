"""The manifest of a built generation: what runs, where, and how it was built.

A generation entry in the store holds one ``manifest.json``; the engine, the
pre-flight, ``status``, ``gc`` and every activator read it back as a
:class:`Generation`. It lives in this low-level module (it imports nothing of
procmgmt but the errors) because both the backends and the deploy pipeline
need it, and neither should own the format of the other.

The JSON form is derived from the dataclass fields, so a new field is written
and read without a second hand-kept list. Two fields are stored differently:
``Generation.path`` is where the manifest is, not part of it, and
``Generation.extras_path`` is stored as ``extras``. Reading converts and
checks every value by its annotation, so a damaged file gives a
:class:`~procmgmt.errors.ManifestError` that names the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

from procmgmt.errors import ManifestError

#: The file name of the manifest inside a generation's store entry.
MANIFEST = "manifest.json"
#: The version of the format below; a reader refuses newer ones.
FORMAT = 1

#: Field metadata: the JSON key of a field whose name differs from it.
_KEY = "manifest_key"
#: Field metadata: False for a field that is not stored in the manifest.
_STORED = "manifest_stored"


@dataclass(frozen=True)
class DeployedProcess:
    """One process of a built generation, as recorded in its manifest."""

    name: str
    #: Content hash of the rendered files: equal hash, nothing to restart.
    hash: str
    #: Store entry holding the rendered files.
    path: str
    rank: int
    dependencies: tuple[str, ...] = ()
    pid_file: str | None = None
    user: str | None = None
    #: Backend-specific facts the activator needs (script path, unit name, ...).
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Serialized readiness declaration (None: started means ready).
    readiness: Any = None
    #: Users and groups the process needs, as JSON-able dicts.
    credentials: Mapping[str, Any] = field(default_factory=dict)
    #: JSON-safe instance metadata (port, dns_name, ...) for status and tests.
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: The programs it runs (daemon, foreground process) as the model wrote them:
    #: paths, or names looked up on ``search_path`` (the pre-flight checks them).
    executables: tuple[str, ...] = ()
    #: The PATH entries of the model's ``path`` (None: the system's).
    search_path: str | None = None
    #: The working directory, if the model sets one.
    directory: str | None = None


@dataclass(frozen=True)
class Generation:
    """A built generation: its processes in start order plus generation-level files."""

    backend: str
    #: The generation's store entry (where its manifest is; not stored in it).
    path: str = field(metadata={_STORED: False})
    processes: tuple[DeployedProcess, ...]
    #: Store entry of generation-level files (e.g. supervisord's base config), if any.
    extras_path: str | None = field(default=None, metadata={_KEY: "extras"})
    settings: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    model: str | None = None

    def by_name(self) -> dict[str, DeployedProcess]:
        """Processes keyed by name."""
        return {p.name: p for p in self.processes}


def to_json(gen: Generation) -> dict[str, Any]:
    """The manifest of ``gen`` as JSON data (with its format version)."""
    return {"format": FORMAT, **_encode(gen)}


def dumps(gen: Generation) -> str:
    """The text of ``gen``'s ``manifest.json``: sorted keys, so equal generations
    give equal files (and equal store hashes)."""
    return json.dumps(to_json(gen), indent=2, sort_keys=True) + "\n"


def from_json(data: Any, path: str, source: str | None = None) -> Generation:
    """The generation stored at ``path`` from its manifest data; ``source`` (the
    file, by default ``path``'s manifest) is what a :class:`ManifestError` names."""
    where = source or os.path.join(path, MANIFEST)
    if not isinstance(data, dict):
        raise ManifestError(where, None, f"expected a JSON object, found {_kind(data)}")
    version = data.get("format")
    if version is None:
        raise ManifestError(where, "format", "missing")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ManifestError(where, "format", f"expected a positive integer, found {version!r}")
    if version > FORMAT:
        raise ManifestError(where, "format", f"format {version} was written by a newer "
                            f"procmgmt (this one reads format {FORMAT})",
                            fix="upgrade procmgmt to use this generation")
    return _decode_dataclass(Generation, data, where, "", {"path": path})


def load_generation(path: str) -> Generation:
    """Read the manifest of the generation stored at ``path``.

    An unreadable file raises ``OSError`` as any file operation does; a file
    that is there but not a valid manifest raises :class:`ManifestError`."""
    source = os.path.join(path, MANIFEST)
    with open(source, "rb") as f:
        raw = f.read()
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(source, None, f"not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(source, None, f"not valid JSON: {exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}") from None
    return from_json(data, path, source)


# --- conversion by annotation ----------------------------------------------------------

def _stored_fields(cls: type[Any]) -> list[tuple[dataclasses.Field[Any], str]]:
    """The (field, JSON key) pairs of a manifest dataclass that are stored."""
    return [(f, f.metadata.get(_KEY, f.name)) for f in dataclasses.fields(cls)
            if f.metadata.get(_STORED, True)]


def _encode(value: Any) -> Any:
    """JSON data of a manifest value: dataclasses by their stored fields, tuples as
    lists, mappings as dicts, anything else (already JSON data) as it is."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _encode(getattr(value, f.name)) for f, key in _stored_fields(type(value))}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _encode(v) for k, v in value.items()}
    return value


_D = TypeVar("_D")


def _decode_dataclass(cls: type[_D], data: Any, source: str, where: str,
                      given: Mapping[str, Any] | None = None) -> _D:
    """An instance of the manifest dataclass ``cls`` from the JSON object ``data``
    found at field path ``where``; ``given`` supplies the fields not stored."""
    if not isinstance(data, dict):
        raise ManifestError(source, where or None,
                            f"expected a JSON object, found {_kind(data)}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = dict(given or {})
    for f, key in _stored_fields(cls):
        at = f"{where}.{key}" if where else key
        if key in data:
            values[f.name] = _decode(hints[f.name], data[key], source, at)
        elif (f.default is dataclasses.MISSING
              and f.default_factory is dataclasses.MISSING):
            raise ManifestError(source, at, "missing")
    return cls(**values)


def _decode(hint: Any, value: Any, source: str, where: str) -> Any:
    """``value`` converted to (and checked against) the annotation ``hint``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value, source, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ManifestError(source, where, f"expected a list, found {_kind(value)}")
        (item, _) = typing.get_args(hint)
        return tuple(_decode(item, v, source, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict):
        if not isinstance(value, dict):
            raise ManifestError(source, where, f"expected a JSON object, found {_kind(value)}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, value, source, where)
    if hint in (str, int):
        if not isinstance(value, hint) or isinstance(value, bool):
            expected = "a string" if hint is str else "an integer"
            raise ManifestError(source, where, f"expected {expected}, found {_kind(value)}")
        return value
    raise TypeError(f"manifest field {where}: no conversion for {hint!r}")  # pragma: no cover


def _kind(value: Any) -> str:
    """How a JSON value is named in messages: its JSON type and a short repr."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    text = repr(value)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f"{names.get(type(value), type(value).__name__)} ({shown})" \
        if value is not None else "null"
