"""Typed errors: library code raises these, the CLI decides how they look.

User mistakes (a bad model, a bad option) are ``UserError`` subclasses and
exit with code 2 without a traceback; failures of the system we drive (a
process that does not start) are ``DeployError`` and exit with 1.
"""

from __future__ import annotations

from dataclasses import dataclass


class ProcmgmtError(Exception):
    """Base class of every error procmgmt raises on purpose."""

    exit_code = 1


class UserError(ProcmgmtError):
    """The user asked for something invalid; fixing the input fixes it."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One validation finding, addressed like ``file:line  instance.field: message``."""

    message: str
    instance: str | None = None
    field: str | None = None
    file: str | None = None
    line: int | None = None

    def location(self) -> str:
        """``file:line`` (or just the file) of the problem, empty if unknown."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""

    def path(self) -> str:
        """``instance.field`` path, as far as it is known."""
        parts = [p for p in (self.instance, self.field) if p]
        return ".".join(parts)

    def __str__(self) -> str:
        loc = self.location()
        path = self.path()
        head = "  ".join(x for x in (loc, path) if x)
        return f"{head}: {self.message}" if head else self.message


class ValidationError(UserError):
    """All problems found in a model, reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ModelLoadError(UserError):
    """The model file could not be read or evaluated."""


class UsageError(UserError):
    """A command-line option or argument is wrong."""


class GenerationError(UserError):
    """A generation that was asked for does not exist (or cannot be used)."""


class DeployError(ProcmgmtError):
    """Activating a generation failed; the previous deployment is restored."""


class LockedError(ProcmgmtError):
    """Another procmgmt holds the profile lock."""
