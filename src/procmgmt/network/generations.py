"""Coordinator generations: which generation each target was on, numbered.

A coordinator generation is one JSON file ``<N>.json`` in the network
profile's directory (``<lib_dir>/procmgmt/network/<profile>/``) naming, per
target, how to reach it, its settings, the generation path and number it
was switched to there, plus the cross-host dependency edges (the order a
later transition stops those processes in). ``current`` names the current
number. Files are written whole and renamed into place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from procmgmt import fsutil
from procmgmt.errors import GenerationError
from procmgmt.network.infrastructure import SSH, Local, Target
from procmgmt.settings import Settings


@dataclass(frozen=True)
class Placed:
    """One target's part of a coordinator generation."""

    target: Target
    #: The target's generation (its store path there; None: nothing deployed).
    path: str | None
    number: int | None


@dataclass(frozen=True)
class CoordinatorGeneration:
    """Every target's generation at one point, and the cross-host edges."""

    number: int
    created: float
    targets: dict[str, Placed]
    #: [dependent target, process, dependency target, process] across hosts.
    edges: list[tuple[str, str, str, str]]
    files: dict[str, str | None]


def target_json(t: Target) -> dict[str, Any]:
    """A target as JSON (enough to reach it and run procmgmt there again)."""
    data = {f.name: getattr(t, f.name) for f in dataclasses.fields(Target)
            if f.name not in ("reach", "origin")}
    data["properties"] = dict(t.properties)
    data["backends"] = list(t.backends) if t.backends is not None else None
    data["reach"] = ({"ssh": dataclasses.asdict(t.reach)} if isinstance(t.reach, SSH)
                     else {"local": {}})
    return data


def target_from_json(data: dict[str, Any]) -> Target:
    """The target :func:`target_json` wrote."""
    reach_data = data["reach"]
    reach: SSH | Local = SSH(**reach_data["ssh"]) if "ssh" in reach_data else Local()
    rest = {k: v for k, v in data.items() if k != "reach"}
    if rest.get("backends") is not None:
        rest["backends"] = tuple(rest["backends"])
    return Target(reach=reach, origin=("", None), **rest)


class NetworkProfile:
    """The coordinator generations of one network profile."""

    def __init__(self, settings: Settings) -> None:
        self.dir = os.path.join(settings.procmgmt_dir, "network", settings.profile)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One transition at a time from this coordinator (the hosts' network locks
        keep other coordinators out)."""
        import fcntl

        fsutil.ensure_dir(self.dir)
        fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise GenerationError("another network transition of this profile is "
                                      "running on this machine") from None
            yield
        finally:
            os.close(fd)

    def staging(self) -> str:
        """Where per-target builds and bundles are made."""
        return os.path.join(self.dir, "staging")

    def numbers(self) -> list[int]:
        """Recorded numbers, oldest first."""
        if not os.path.isdir(self.dir):
            return []
        return sorted(int(n[:-5]) for n in os.listdir(self.dir)
                      if n.endswith(".json") and n[:-5].isdigit())

    def current_number(self) -> int | None:
        """The current number (None: nothing recorded)."""
        try:
            with open(os.path.join(self.dir, "current")) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def load(self, number: int) -> CoordinatorGeneration:
        """Coordinator generation ``number``."""
        path = os.path.join(self.dir, f"{number}.json")
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            known = ", ".join(map(str, self.numbers())) or "none"
            raise GenerationError(f"network generation {number} does not exist "
                                  f"(known: {known})") from None
        return CoordinatorGeneration(
            number, data["created"],
            {name: Placed(target_from_json(t["target"]), t["path"], t["number"])
             for name, t in data["targets"].items()},
            [(e[0], e[1], e[2], e[3]) for e in data["edges"]],
            data.get("files", {}))

    def current(self) -> CoordinatorGeneration | None:
        """The current coordinator generation, if any."""
        number = self.current_number()
        return None if number is None else self.load(number)

    def add(self, targets: dict[str, Placed], edges: list[tuple[str, str, str, str]],
            files: dict[str, str | None]) -> int:
        """Record a new generation and make it current."""
        number = max(self.numbers(), default=0) + 1
        data = {"created": time.time(), "edges": [list(e) for e in edges], "files": files,
                "targets": {name: {"target": target_json(p.target), "path": p.path,
                                   "number": p.number} for name, p in targets.items()}}
        self._write(f"{number}.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
        self.set_current(number)
        return number

    def set_current(self, number: int) -> None:
        """Make ``number`` current."""
        self._write("current", f"{number}\n")

    def _write(self, name: str, text: str) -> None:
        fsutil.ensure_dir(self.dir)
        tmp = os.path.join(self.dir, f".{name}.tmp-{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(self.dir, name))
