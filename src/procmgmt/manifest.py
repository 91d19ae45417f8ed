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
import functools
import json
import os
import types
import typing
from collections.abc import Callable, Mapping
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
#: Field metadata: True for a field added to format 1 later, written only when it is
#: not None, so a manifest written before it existed is rewritten byte for byte
#: (an equal generation keeps its store hash).
_SPARSE = "manifest_sparse"


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
    #: The signal the process declares for ``reload`` (None: it declares none).
    reload_signal: str | None = field(default=None, metadata={_SPARSE: True})
    #: The model's restart policy (None: the backend's default, which status names).
    restart: str | None = field(default=None, metadata={_SPARSE: True})
    #: Serialized liveness declaration (None: none).
    liveness: Any = field(default=None, metadata={_SPARSE: True})


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
#
# The converters are built once per annotation (functools.cache: a memo of a pure
# function of a type), not interpreted per value: reading a generation of 10,000
# processes takes 0.2 s, as the hand-written reader did.

_Decoder = Callable[[Any, str, str], Any]
_Encoder = Callable[[Any], Any]
_D = TypeVar("_D")


@functools.cache
def _fields(cls: Any) -> tuple[tuple[str, str, Any, bool], ...]:
    """(name, JSON key, annotation, has a default) of each stored field of ``cls``."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, f.metadata.get(_KEY, f.name), hints[f.name],
                  f.default is not dataclasses.MISSING
                  or f.default_factory is not dataclasses.MISSING)
                 for f in dataclasses.fields(cls) if f.metadata.get(_STORED, True))


def _encode(value: Any) -> Any:
    """JSON data of a manifest dataclass instance."""
    cls: Any = type(value)
    return _encoder(cls)(value)


@functools.cache
def _encoder(hint: Any) -> _Encoder:
    """How a value of annotation ``hint`` becomes JSON data: dataclasses by their
    stored fields, tuples as lists, mappings as dicts, the rest (already JSON
    data) as it is."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [_encoder(a) for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) == 1:
            enc = inner[0]
            return lambda v: None if v is None else enc(v)
    if origin is tuple:
        item = _encoder(typing.get_args(hint)[0])
        return lambda v: [item(x) for x in v]
    if origin in (Mapping, dict):
        return dict
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        plan = [(name, key, _encoder(h)) for name, key, h, _ in _fields(hint)]
        sparse = {f.name for f in dataclasses.fields(hint) if f.metadata.get(_SPARSE)}
        return lambda v: {key: enc(getattr(v, name)) for name, key, enc in plan
                          if name not in sparse or getattr(v, name) is not None}
    return _identity


def _identity(value: Any) -> Any:
    return value


def _decode_dataclass(cls: type[_D], data: Any, source: str, where: str,
                      given: Mapping[str, Any] | None = None) -> _D:
    """An instance of the manifest dataclass ``cls`` from the JSON object ``data``
    found at field path ``where``; ``given`` supplies the fields not stored."""
    return typing.cast("_D", _dataclass_decoder(cls, given or {})(data, source, where))


def _dataclass_decoder(cls: Any, given: Mapping[str, Any]) -> _Decoder:
    plan = [(name, key, _decoder(hint), has_default)
            for name, key, hint, has_default in _fields(cls)]

    def decode(data: Any, source: str, where: str) -> Any:
        if not isinstance(data, dict):
            raise ManifestError(source, where or None,
                                f"expected a JSON object, found {_kind(data)}")
        values = dict(given)
        for name, key, dec, has_default in plan:
            if key in data:
                values[name] = dec(data[key], source, f"{where}.{key}" if where else key)
            elif not has_default:
                raise ManifestError(source, f"{where}.{key}" if where else key, "missing")
        return cls(**values)
    return decode


@functools.cache
def _decoder(hint: Any) -> _Decoder:
    """How a JSON value becomes (and is checked as) a value of annotation ``hint``."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return lambda v, source, where: v
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        (inner,) = [_decoder(a) for a in args if a is not type(None)]
        optional = type(None) in args
        return lambda v, source, where: (None if v is None and optional
                                         else inner(v, source, where))
    if origin is tuple:
        item = _decoder(typing.get_args(hint)[0])

        def tuple_of(v: Any, source: str, where: str) -> Any:
            if not isinstance(v, list):
                raise ManifestError(source, where, f"expected a list, found {_kind(v)}")
            return tuple(item(x, source, f"{where}[{i}]") for i, x in enumerate(v))
        return tuple_of
    if origin in (Mapping, dict):
        def mapping(v: Any, source: str, where: str) -> Any:
            if not isinstance(v, dict):
                raise ManifestError(source, where, f"expected a JSON object, found {_kind(v)}")
            return v
        return mapping
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass_decoder(hint, {})
    if hint in (str, int):
        expected = "a string" if hint is str else "an integer"

        def scalar(v: Any, source: str, where: str) -> Any:
            if not isinstance(v, hint) or isinstance(v, bool):
                raise ManifestError(source, where, f"expected {expected}, found {_kind(v)}")
            return v
        return scalar
    raise TypeError(f"no manifest conversion for {hint!r}")  # pragma: no cover


def _kind(value: Any) -> str:
    """How a JSON value is named in messages: its JSON type and a short repr."""
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number"}
    text = repr(value)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f"{names.get(type(value), type(value).__name__)} ({shown})"
