"""Telling generations apart: what each one deploys and what changed against another.

``switch --list-generations`` shows, per generation, the backend, the model
file, the number of processes and the change against the generation before
it; ``switch --diff MODEL`` shows the change a switch would make. Both read
only manifests and store entries, so they are cheap and never touch a
running process.

A process is identified by name here (the plan identifies it by content
hash): a name in both generations with another hash is *changed*, and the
diff says which manifest fields and which rendered files differ.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from procmgmt.deploy.profile import Profile
from procmgmt.errors import ManifestError, UsageError
from procmgmt.manifest import DeployedProcess, Generation, load_generation

#: Manifest fields of a process that say nothing about what it does: the hash
#: and store path follow from the files, and the files are compared themselves.
_NOT_COMPARED = frozenset({"name", "hash", "path"})


@dataclass(frozen=True)
class Change:
    """One process present in both generations whose rendered files differ."""

    name: str
    #: Manifest fields that differ (dependencies, user, readiness, ...).
    fields: tuple[str, ...] = ()
    #: Rendered files (relative to the process's store entry) added, removed or edited.
    files: tuple[str, ...] = ()

    def describe(self) -> str:
        """``name: fields a, b; files x, y`` (only what differs)."""
        parts = []
        if self.fields:
            parts.append("fields " + ", ".join(self.fields))
        if self.files:
            parts.append("files " + ", ".join(self.files))
        return self.name + (": " + "; ".join(parts) if parts else "")

    def to_json(self) -> dict[str, Any]:
        """The change as JSON data."""
        return {"name": self.name, "fields": list(self.fields), "files": list(self.files)}


@dataclass(frozen=True)
class Diff:
    """What differs between two generations, by process name."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[Change, ...] = ()
    #: Processes in both with the same files.
    unchanged: tuple[str, ...] = ()
    #: The backend of each side, when they differ (every process moves then).
    backends: tuple[str, str] | None = None

    def is_empty(self) -> bool:
        """Nothing added, removed or changed, and the same backend."""
        return not (self.added or self.removed or self.changed or self.backends)

    def summary(self) -> str:
        """One line: ``added a, b; removed c; changed d`` (or ``no change``)."""
        parts = []
        if self.backends:
            parts.append(f"backend {self.backends[0]} -> {self.backends[1]}")
        for word, names in (("added", self.added), ("removed", self.removed),
                            ("changed", tuple(c.name for c in self.changed))):
            if names:
                parts.append(f"{word} {', '.join(names)}")
        return "; ".join(parts) or "no change"

    def lines(self) -> list[str]:
        """One line per added, removed and changed process, changed ones with what
        differs, and a count of the unchanged ones."""
        out = []
        if self.backends:
            out.append(f"backend  {self.backends[0]} -> {self.backends[1]} "
                       "(every process moves to the new manager)")
        out += [f"added    {n}" for n in self.added]
        out += [f"removed  {n}" for n in self.removed]
        out += [f"changed  {c.describe()}" for c in self.changed]
        if self.unchanged:
            out.append(f"{len(self.unchanged)} unchanged: {', '.join(self.unchanged)}")
        if not out:
            out.append("no processes on either side")
        return out

    def to_json(self) -> dict[str, Any]:
        """The diff as JSON data."""
        return {"added": list(self.added), "removed": list(self.removed),
                "changed": [c.to_json() for c in self.changed],
                "unchanged": list(self.unchanged),
                "backends": list(self.backends) if self.backends else None}


def diff(old: Generation | None, new: Generation) -> Diff:
    """What changes from ``old`` (None: nothing deployed) to ``new``; names sorted."""
    before = old.by_name() if old is not None else {}
    after = new.by_name()
    backends = ((old.backend, new.backend)
                if old is not None and old.processes and new.processes
                and old.backend != new.backend else None)
    changed, unchanged = [], []
    for p in new.processes:
        q = before.get(p.name)
        if q is None:
            continue
        if q.hash == p.hash:
            unchanged.append(p.name)
        else:
            changed.append(Change(p.name, _changed_fields(q, p), _changed_files(q.path, p.path)))
    return Diff(added=tuple(sorted(n for n in after if n not in before)),
                removed=tuple(sorted(n for n in before if n not in after)),
                changed=tuple(sorted(changed, key=lambda c: c.name)),
                unchanged=tuple(sorted(unchanged)), backends=backends)


def _changed_fields(old: DeployedProcess, new: DeployedProcess) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(DeployedProcess)
                 if f.name not in _NOT_COMPARED
                 and getattr(old, f.name) != getattr(new, f.name))


def _changed_files(old: str, new: str) -> tuple[str, ...]:
    """Relative paths of the files that differ between two store entries (the
    files of a collected entry are unknown: nothing is reported for them)."""
    a, b = dict(_files(old)), dict(_files(new))
    return tuple(sorted(rel for rel in a.keys() | b.keys() if a.get(rel) != b.get(rel)))


def _files(root: str) -> Iterator[tuple[str, bytes]]:
    """(relative path, content or link target) of every file under ``root``."""
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            try:
                if os.path.islink(full):
                    yield rel, b"-> " + os.readlink(full).encode()
                else:
                    with open(full, "rb") as f:
                        yield rel, f.read()
            except OSError:
                continue


@dataclass(frozen=True)
class Entry:
    """One generation of a profile as ``--list-generations`` shows it."""

    number: int
    created: float
    current: bool
    path: str
    #: The manifest; None when the store entry is gone or unreadable.
    generation: Generation | None
    #: Why the manifest could not be read (with ``generation`` None).
    problem: str | None = None
    #: The change against the generation listed before it.
    diff: Diff = field(default_factory=Diff)

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON data."""
        gen = self.generation
        return {"number": self.number, "created": self.created, "current": self.current,
                "path": self.path, "backend": gen.backend if gen else None,
                "model": gen.model if gen else None,
                "processes": len(gen.processes) if gen else None,
                "changes": self.diff.to_json() if gen else None, "problem": self.problem}


def listing(profile: Profile) -> list[Entry]:
    """Every generation of ``profile``, oldest first, each with its change against
    the one before it (the first against nothing deployed)."""
    entries = []
    previous: Generation | None = None
    for link in profile.generations():
        try:
            gen: Generation | None = load_generation(link.target)
            problem = None
        except (OSError, ManifestError) as exc:
            gen, problem = None, (exc.strerror or str(exc)) if isinstance(exc, OSError) \
                else str(exc)
        entries.append(Entry(link.number, link.created, link.current, link.target, gen,
                             problem, diff(previous, gen) if gen else Diff()))
        previous = gen
    return entries


def check_same_model(current: Generation | None, number: int | None, model: str | None,
                     profile: str) -> None:
    """Refuse to switch ``profile`` from the model of the current generation to
    another model file: the second model would silently replace the first one's
    processes. ``model`` None (undeploy) and a current generation without a model
    (empty, or from an older manifest) pass."""
    if current is None or model is None or current.model is None or not current.processes:
        return
    wanted = os.path.abspath(model)
    if os.path.isdir(wanted):  # as the loader reads a directory
        wanted = os.path.join(wanted, "processes.py")
    if os.path.realpath(current.model) == os.path.realpath(wanted):
        return
    raise UsageError(
        f"profile {profile!r} holds a deployment of {current.model} (generation {number}); "
        f"switching to {wanted} would replace it: pass --replace to do that, or deploy "
        "the second model into another profile (-p NAME) or state dir")
