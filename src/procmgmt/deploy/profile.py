"""Profiles and their numbered generations, Nix style.

``profiles/<profile>-<N>-link`` points at a generation's store entry and
``profiles/<profile>`` points at the current ``-N-link``. Every pointer
change is an atomic ``rename`` of a fresh symlink over the old one, so a
crash leaves either the old or the new generation current, never neither.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

from procmgmt import fsutil
from procmgmt.errors import GenerationError, UsageError
from procmgmt.settings import Settings


@dataclass(frozen=True)
class GenerationLink:
    """One numbered generation of a profile."""

    number: int
    link: str
    target: str
    created: float
    current: bool


class Profile:
    """The generations of one profile."""

    def __init__(self, settings: Settings) -> None:
        self.dir = settings.profiles_dir
        self.name = settings.profile
        self._re = re.compile(rf"^{re.escape(self.name)}-(\d+)-link$")

    @property
    def pointer(self) -> str:
        """``profiles/<profile>``."""
        return os.path.join(self.dir, self.name)

    def _link(self, number: int) -> str:
        return os.path.join(self.dir, f"{self.name}-{number}-link")

    def current_number(self) -> int | None:
        """Number of the current generation, None if there is none."""
        try:
            target = os.readlink(self.pointer)
        except OSError:
            return None
        m = self._re.match(os.path.basename(target))
        return int(m.group(1)) if m else None

    def current_path(self) -> str | None:
        """Store path of the current generation."""
        n = self.current_number()
        if n is None:
            return None
        try:
            return os.readlink(self._link(n))
        except OSError:
            return None

    def generations(self) -> list[GenerationLink]:
        """Every generation, oldest first."""
        if not os.path.isdir(self.dir):
            return []
        current = self.current_number()
        out = []
        for entry in os.listdir(self.dir):
            m = self._re.match(entry)
            if not m:
                continue
            link = os.path.join(self.dir, entry)
            try:
                target = os.readlink(link)
                created = os.lstat(link).st_mtime
            except OSError:
                continue
            n = int(m.group(1))
            out.append(GenerationLink(n, link, target, created, n == current))
        return sorted(out, key=lambda g: g.number)

    def path_of(self, number: int) -> str:
        """Store path of generation ``number``; GenerationError if it does not exist."""
        for g in self.generations():
            if g.number == number:
                return g.target
        known = ", ".join(str(g.number) for g in self.generations()) or "none"
        raise GenerationError(f"generation {number} of profile {self.name!r} does not exist "
                              f"(known: {known})")

    def previous_number(self) -> int:
        """The generation a rollback goes to: the newest one older than the current."""
        current = self.current_number()
        older = [g.number for g in self.generations()
                 if current is None or g.number < current]
        if not older:
            raise GenerationError("unable to roll back: there is no generation before the "
                                  "current one (see --list-generations)")
        return max(older)

    @staticmethod
    def _atomic_symlink(target: str, link: str) -> None:
        tmp = f"{link}.tmp-{os.getpid()}"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, link)

    def add(self, store_path: str) -> int:
        """Record ``store_path`` as a new generation and make it current."""
        fsutil.ensure_dir(self.dir)
        gens = self.generations()
        number = (gens[-1].number + 1) if gens else 1
        self._atomic_symlink(store_path, self._link(number))
        self.set_current(number)
        return number

    def set_current(self, number: int) -> None:
        """Point the profile at generation ``number`` (atomically)."""
        self._atomic_symlink(os.path.basename(self._link(number)), self.pointer)

    def delete(self, numbers: list[int]) -> list[int]:
        """Delete generations (never the current one); return those deleted."""
        current = self.current_number()
        deleted = []
        for g in self.generations():
            if g.number in numbers and g.number != current:
                os.unlink(g.link)
                deleted.append(g.number)
        return deleted

    def delete_all(self) -> None:
        """Remove every generation and the profile pointer (nothing is deployed after)."""
        for g in self.generations():
            os.unlink(g.link)
        if os.path.lexists(self.pointer):
            os.unlink(self.pointer)

    def select(self, spec: str, now: float | None = None) -> list[int]:
        """Generations matched by a --delete-generations SPEC.

        ``old``: all but the current; ``Nd``: older than N days (not the
        current); otherwise space- or comma-separated numbers.
        """
        now = time.time() if now is None else now
        gens = self.generations()
        current = self.current_number()
        spec = spec.strip()
        if spec == "old":
            return [g.number for g in gens if g.number != current]
        m = re.fullmatch(r"(\d+)d", spec)
        if m:
            limit = now - int(m.group(1)) * 86400
            return [g.number for g in gens if g.created < limit and g.number != current]
        numbers = []
        for part in re.split(r"[\s,]+", spec):
            if not part.isdigit():
                raise UsageError(f"--delete-generations: {spec!r} is not 'old', 'Nd' "
                                 "(older than N days) or a list of generation numbers")
            numbers.append(int(part))
        known = {g.number for g in gens}
        for n in numbers:
            if n not in known:
                raise GenerationError(f"generation {n} of profile {self.name!r} does not exist")
            if n == current:
                raise GenerationError(f"generation {n} is the current one and cannot be "
                                      "deleted; switch to another generation first")
        return numbers
