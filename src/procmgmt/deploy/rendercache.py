"""The render cache: a process whose inputs did not change is not rendered again.

A build renders every process of the model, although a switch that adds one
instance changes one. This cache remembers, per process, which store entry
its rendering produced and *everything the rendering read*, so the next build
reuses the entry when all of it is unchanged. It must never hit wrongly, so
the key is not a guess at what matters:

- the **key** covers what every rendering may read: procmgmt's own code (a
  hash of its package files, and of a third-party backend's package), the
  Python version, the backend (its name and its instance's state, e.g. a
  prefix read from the environment), the whole :class:`Settings`, the
  environment variables a backend reads while translating (its
  ``own_settings``, every ``PROCMGMT_*``, ``PATH``, ``HOME``), the effective
  uid, and the process's own :class:`ProcessSpec` (with its ``PATH`` as the
  host resolves it now);
- the **reads** are recorded while the process renders: the build context's
  specs of other processes, their origins and dependents, and the host
  lookups a backend makes (:meth:`BuildContext.which`,
  :meth:`BuildContext.is_executable`). A later build reuses the entry only
  when every recorded read gives the same answer again.

Values that cannot be fingerprinted faithfully (an override *function*, a
class defined outside procmgmt such as a model's own readiness class, a read
of the model's raw :class:`Process` objects or of every spec at once, which
amounts to the whole model) make a process uncacheable: it is rendered
every time, as before.

The rendered files themselves live in the store (immutable, content
addressed); the cache is one index file per profile and backend under
``<procmgmt dir>/render-cache`` (mode 0600, in a 0700 directory: the
manifest facts it keeps may name credentials), replaced atomically. Two
builds at once each write a complete index; the last one wins, which can
only cost the other's entries a render next time. A missing, unreadable or
corrupt index is an empty cache, and a failure to write it never fails the
build.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from procmgmt import fsutil
from procmgmt.backends.base import Backend, BuildContext
from procmgmt.deploy.fingerprint import (
    UncacheableError,
    code_roots,
    fingerprint,
    generator_fingerprint,
)
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: Bump when the index's layout changes (an older index is then ignored).
FORMAT = 1
#: Marker of an absent value in a read (a spec name the model does not have).
_ABSENT = "-"

T = TypeVar("T")


# --- recording what a rendering reads ---------------------------------------------------

#: One read: (kind, argument, digest of the answer).
Read = tuple[str, str, str]


@dataclass
class _ReadLog:
    """The reads of the process being rendered (None: not recording)."""

    current: list[Read] | None = None
    #: Set when the rendering read something that no fingerprint covers.
    spoiled: bool = False

    def note(self, kind: str, arg: str, answer: Callable[[], str]) -> None:
        if self.current is not None:
            try:
                self.current.append((kind, arg, answer()))
            except UncacheableError:
                self.spoiled = True

    def spoil(self) -> None:
        if self.current is not None:
            self.spoiled = True


class _Traced(Mapping[str, T]):
    """A read-only mapping that records which keys a rendering looked up."""

    def __init__(self, kind: str, data: Mapping[str, T], log: _ReadLog,
                 digest: Callable[[str], str]) -> None:
        self._kind, self._data, self._log, self._digest = kind, data, log, digest

    def __getitem__(self, key: str) -> T:
        self._log.note(self._kind, key, lambda: self._digest(key))
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._log.note(self._kind, key, lambda: self._digest(key))
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        # Every key at once is the whole model: no entry could survive any change.
        self._log.spoil()
        return iter(self._data)

    def __len__(self) -> int:
        self._log.spoil()
        return len(self._data)


@dataclass(frozen=True)
class TracingContext(BuildContext):
    """A :class:`BuildContext` whose lookups are recorded into ``log``."""

    log: _ReadLog = field(default_factory=_ReadLog)

    def dependents(self, name: str) -> tuple[str, ...]:
        """As :meth:`BuildContext.dependents`, recorded."""
        found = super().dependents(name)
        self.log.note("dependents", name, lambda: fingerprint(found))
        return found

    def which(self, name: str) -> str | None:
        """As :meth:`BuildContext.which`, recorded."""
        found = super().which(name)
        self.log.note("which", name, lambda: fingerprint(found))
        return found

    def is_executable(self, path: str) -> bool:
        """As :meth:`BuildContext.is_executable`, recorded."""
        found = super().is_executable(path)
        self.log.note("executable", path, lambda: fingerprint(found))
        return found


# --- the cache --------------------------------------------------------------------------

@dataclass(frozen=True)
class Hit:
    """A process rendered before from the same inputs: its store entry and facts."""

    path: str
    extra: dict[str, Any]
    warnings: tuple[str, ...]


@dataclass
class RenderCache:
    """The cache of one build (profile and backend): look up, record, save."""

    index_path: str
    store_dir: str
    backend: Backend
    settings: Settings
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Entries of this build (what :meth:`save` writes: the index stays the model's size).
    used: dict[str, dict[str, Any]] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    _base: str = ""
    _log: _ReadLog = field(default_factory=_ReadLog)
    _specs: Mapping[str, ProcessSpec] = field(default_factory=dict)
    _origins: Mapping[str, Any] = field(default_factory=dict)
    _ctx: BuildContext | None = None
    _spec_digests: dict[str, str] = field(default_factory=dict)
    _keys: dict[str, str | None] = field(default_factory=dict)
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings, backend: Backend) -> RenderCache:
        """The cache of ``settings``' profile for ``backend``, read from its index."""
        directory = os.path.join(settings.procmgmt_dir, "render-cache")
        path = os.path.join(directory, f"{settings.profile}.{backend.name}.json")
        self = cls(path, settings.store_dir, backend, settings)
        self.entries = _read_index(path)
        try:
            self._base = fingerprint((generator_fingerprint(*code_roots(backend)),
                                      backend.name, _instance_state(backend), settings,
                                      _environment(), os.geteuid()))
        except UncacheableError:
            self._base = ""  # nothing of this build is cached
        return self

    def context(self, settings: Settings, specs: Mapping[str, ProcessSpec],
                origins: Mapping[str, tuple[str, str | None, int | None]],
                processes: Mapping[str, Any]) -> BuildContext:
        """The build context to render with: its lookups are recorded."""
        self._specs, self._origins = specs, origins
        log = self._log
        ctx = TracingContext(
            settings=settings,
            specs=_Traced("spec", specs, log, self._spec_digest),
            origins=_Traced("origin", origins, log, self._origin_digest),
            processes=_Traced("process", processes, log, _uncacheable),
            log=log,
        )
        ctx.dependents("")  # build the dependents index now, not while recording
        self._ctx = ctx
        return ctx

    def lookup(self, spec: ProcessSpec) -> Hit | None:
        """The earlier rendering of ``spec`` if nothing it read has changed."""
        key = self._key(spec)
        entry = self.entries.get(key) if key else None
        if entry is None or not self._still_valid(entry):
            self.misses += 1
            return None
        path = os.path.join(self.store_dir, entry["entry"])
        if not os.path.isdir(path):  # collected by gc since
            self.misses += 1
            return None
        assert key is not None
        self.used[key] = entry
        self.hits += 1
        return Hit(path, entry["extra"], tuple(entry["warnings"]))

    def _still_valid(self, entry: dict[str, Any]) -> bool:
        try:
            return all(self._answer(kind, arg) == digest for kind, arg, digest in entry["reads"])
        except (UncacheableError, TypeError, ValueError, KeyError):
            return False

    def _answer(self, kind: str, arg: str) -> str:
        ctx = self._ctx
        assert ctx is not None
        if kind == "spec":
            return self._spec_digest(arg)
        if kind == "origin":
            return self._origin_digest(arg)
        if kind == "dependents":
            return fingerprint(BuildContext.dependents(ctx, arg))
        if kind == "which":
            return fingerprint(BuildContext.which(ctx, arg))
        if kind == "executable":
            return fingerprint(BuildContext.is_executable(ctx, arg))
        raise UncacheableError(kind)

    def recording(self, spec: ProcessSpec) -> _Recording:
        """Record what rendering ``spec`` reads (a context manager)."""
        return _Recording(self, spec)

    def rendered(self, spec: ProcessSpec, reads: list[Read] | None, extra: dict[str, Any],
                 warnings: Sequence[str]) -> None:
        """Note a fresh rendering; :meth:`stored` completes the entry."""
        key = self._key(spec)
        if key is None or reads is None:
            return
        try:
            # The manifest stores ``extra`` as JSON: the round trip is what it reads back.
            extra = json.loads(json.dumps(extra, sort_keys=True))
        except (TypeError, ValueError):
            return
        self._pending[spec.name] = {"key": key, "reads": [list(r) for r in sorted(set(reads))],
                                    "extra": extra, "warnings": list(warnings)}

    def stored(self, spec: ProcessSpec, path: str) -> None:
        """The store entry a fresh rendering of ``spec`` went into."""
        pending = self._pending.pop(spec.name, None)
        if pending is not None:
            key = pending.pop("key")
            self.used[key] = {**pending, "entry": os.path.basename(path)}

    def save(self) -> None:
        """Write this build's entries as the new index (atomically; errors ignored)."""
        if self.used == self.entries or not self._base:
            return
        directory = os.path.dirname(self.index_path)
        text = json.dumps({"format": FORMAT, "entries": self.used}, sort_keys=True)
        try:
            fsutil.ensure_dir(directory, fsutil.PRIVATE_DIR, enforce=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, self.index_path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            _remove_stale_temporaries(directory)
        except OSError:
            pass  # a cache that cannot be written costs the next build a render, nothing more

    def _key(self, spec: ProcessSpec) -> str | None:
        if spec.name not in self._keys:
            key: str | None = None
            if self._base:
                try:
                    key = fingerprint((self._base, self._spec_digest(spec.name)))
                except UncacheableError:
                    key = None
            self._keys[spec.name] = key
        return self._keys[spec.name]

    def _spec_digest(self, name: str) -> str:
        found = self._spec_digests.get(name)
        if found is None:
            spec = self._specs.get(name)
            # ``path_value`` looks at the host (an entry's ``bin`` subdir): its
            # answer now is part of what the spec means to a renderer.
            found = _ABSENT if spec is None else fingerprint((spec, spec.path_value()))
            self._spec_digests[name] = found
        return found

    def _origin_digest(self, name: str) -> str:
        origin = self._origins.get(name)
        return _ABSENT if origin is None else fingerprint(origin)


class _Recording:
    """While rendering one spec: reads go to a fresh list; warnings are sliced."""

    def __init__(self, cache: RenderCache, spec: ProcessSpec) -> None:
        self.cache, self.spec = cache, spec
        self.reads: list[Read] | None = None

    def __enter__(self) -> _Recording:
        log = self.cache._log
        log.current, log.spoiled = [], False
        return self

    def __exit__(self, *exc: object) -> None:
        log = self.cache._log
        self.reads = None if log.spoiled else log.current
        log.current, log.spoiled = None, False


#: A temporary index older than this was left by a build killed while writing it.
STALE_SECONDS = 600.0


def _remove_stale_temporaries(directory: str) -> None:
    """Delete the temporary files of builds killed in the middle of :meth:`RenderCache.save`."""
    now = time.time()
    for name in os.listdir(directory):
        if name.startswith(".tmp-"):
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if now - os.lstat(path).st_mtime > STALE_SECONDS:
                    os.unlink(path)


def _uncacheable(name: str) -> str:
    raise UncacheableError(f"the model's process {name!r}")


def _environment() -> dict[str, str]:
    """The variables a rendering may read: procmgmt's own (a backend's
    ``own_settings`` are read from the environment while translating, e.g. the
    systemd unit prefix), and the ones paths are derived from."""
    from procmgmt.backends import registry

    names = {f.env for cls in registry().values() for f in cls.own_settings}
    names |= {"HOME", "XDG_CONFIG_HOME", "PATH"}
    return {k: v for k, v in os.environ.items() if k in names or k.startswith("PROCMGMT_")}


def _instance_state(backend: Backend) -> dict[str, Any]:
    """What a backend instance was constructed with (e.g. a prefix from the environment)."""
    return {k: v for k, v in vars(backend).items() if not k.startswith("__")}


def _read_index(path: str) -> dict[str, dict[str, Any]]:
    """The entries of the index at ``path``; empty when missing, unreadable or corrupt."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if _well_formed(v)}


def _well_formed(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("entry"), str)
            and "/" not in entry["entry"] and not entry["entry"].startswith(".")
            and isinstance(entry.get("extra"), dict)
            and isinstance(entry.get("warnings"), list)
            and all(isinstance(w, str) for w in entry["warnings"])
            and isinstance(entry.get("reads"), list)
            and all(isinstance(r, list) and len(r) == 3 and all(isinstance(x, str) for x in r)
                    for r in entry["reads"]))


__all__ = ["Hit", "RenderCache", "TracingContext"]
