"""How ``switch --list-generations`` and ``switch --diff`` present generations.

The facts come from :mod:`procmgmt.deploy.generations`; this module only
formats them, one line per generation (scripts read the number as the first
word and ``(current)`` as the marker) or as JSON with ``--json``."""

from __future__ import annotations

import json
import os

from procmgmt.cli.common import fmt_time
from procmgmt.deploy.generations import Diff, Entry, diff, listing
from procmgmt.deploy.profile import Profile
from procmgmt.manifest import Generation


def print_listing(profile: Profile, as_json: bool) -> None:
    """Every generation: number, time, current marker, backend, model, process
    count and what changed against the generation before it."""
    entries = listing(profile)
    if as_json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return
    for e in entries:
        print(_line(e))


def _line(e: Entry) -> str:
    mark = "  (current)" if e.current else " " * 11
    head = f"{e.number:5d}   {fmt_time(e.created)}{mark}"
    gen = e.generation
    if gen is None:
        return f"{head}   unreadable: {e.problem}"
    count = len(gen.processes)
    model = _shown(gen.model) if gen.model else "(empty model)"
    return (f"{head}   {gen.backend:<11}  {count:3d} process{'' if count == 1 else 'es'}"
            f"   {model}   {e.diff.summary()}")


def _shown(path: str) -> str:
    """A model path relative to the working directory when it is below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def print_diff(current: Generation | None, number: int | None, new: Generation,
               as_json: bool) -> Diff:
    """What switching from ``current`` (generation ``number``) to ``new`` changes."""
    d = diff(current, new)
    if as_json:
        print(json.dumps({"from": _side(current, number), "to": _side(new, None),
                          **d.to_json()}, indent=2))
        return d
    before = (f"generation {number} ({current.backend}, {_model(current)})"
              if current is not None else "nothing deployed")
    print(f"from {before}")
    print(f"to   {_model(new)} ({new.backend})")
    for line in d.lines():
        print(f"  {line}")
    return d


def _model(gen: Generation) -> str:
    return _shown(gen.model) if gen.model else "the empty model"


def _side(gen: Generation | None, number: int | None) -> dict[str, object] | None:
    if gen is None:
        return None
    return {"generation": number, "backend": gen.backend, "model": gen.model,
            "processes": len(gen.processes)}
