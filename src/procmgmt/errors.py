"""Typed errors: library code raises these, the CLI decides how they look.

User mistakes (a bad model, a bad option) are ``UserError`` subclasses and
exit with code 2 without a traceback; failures of the system we drive (a
process that does not start) are ``DeployError`` and exit with 1.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol


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


class InterruptError(ProcmgmtError):
    """SIGINT or SIGTERM stopped the command (exit 130, as a shell reports Ctrl-C)."""

    exit_code = 130


class StorageError(ProcmgmtError):
    """A file operation failed for a reason outside procmgmt: a full disk, a
    read-only file system, missing permissions. The message names the
    operation, the path and (when the disk is full) the space left."""


# --- the errors of particular modules: every error procmgmt raises on purpose is
# --- declared here, so its exit code and message style are reviewed in one place.


class CycleError(UserError):
    """A dependency cycle; ``cycle`` lists the names, first == last.

    Validation reports a cycle of a model as a located :class:`Problem`; this is
    what the ordering functions raise when they are handed a cyclic graph."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(" -> ".join(cycle))


class ManifestError(GenerationError, ValueError):
    """A generation's ``manifest.json`` is damaged (or from a newer procmgmt): names
    the file, the field (``processes[2].rank``) and what to do, instead of a
    ``KeyError`` traceback. Also a ``ValueError``, as the JSON decoder's error
    was, so code that skips unreadable generations (journal recovery) still does."""

    #: What helps with a damaged manifest: the store entry cannot be repaired in place.
    FIX = ("the file is damaged: build and deploy the model again ('procmgmt switch "
           "MODEL'), or switch to another generation ('procmgmt switch "
           "--switch-generation N')")

    def __init__(self, file: str, field: str | None, message: str,
                 fix: str | None = None) -> None:
        self.file = file
        self.field = field
        where = f"{file}: {field}" if field else file
        super().__init__(f"generation manifest {where}: {message}; {fix or self.FIX}")


class UserCodeError(ModelLoadError):
    """User code failed: where (the user's file and line) and why."""

    def __init__(self, file: str | None, line: int | None, what: str, reason: str) -> None:
        self.file = file
        self.line = line
        self.what = what
        self.reason = reason
        where = f"{file}:{line}" if file and line else (file or "")
        text = f"{what} failed: {reason}" if what else reason
        super().__init__(f"{where}: {text}" if where else text)


class IdResourcesError(UserError):
    """The ID resources file is unreadable or malformed."""


class IdsFileError(UserError):
    """The ids file is unreadable or malformed."""


class IdRequirementError(UserError):
    """An instance requires IDs from a resource the resources file does not define."""


class IdsDepletedError(UserError):
    """Every ID of a resource is in use: the range must be widened."""


class IdsMissingError(UserError):
    """A build needs IDs the ids file does not have: ``procmgmt id-assign`` must run first."""


class SpecError(UserError):
    """An agnostic spec file that cannot be read: names the file (and key)."""


class PreflightError(DeployError):
    """The pre-flight found problems; nothing was stopped or changed."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"pre-flight found {len(problems)} problem"
                         f"{'s' if len(problems) != 1 else ''}; nothing was stopped or "
                         "changed:\n" + "\n".join(f"  {p}" for p in problems))


class Described(Protocol):
    """What an error needs of a readiness check: its description. (errors.py is the
    lowest module: it names no other procmgmt type, so nothing can import it in a loop.)"""

    def describe(self) -> str: ...


class ReadinessError(DeployError):
    """A process did not become ready in time: names the process, the check and the last error."""

    def __init__(self, name: str, check: Described, last_error: str, seconds: float) -> None:
        self.name = name
        self.check = check
        self.last_error = last_error
        super().__init__(f"{name} did not become ready within {seconds:.1f} s "
                         f"({check.describe()}): {last_error}")


class UnsafePathError(DeployError, OSError):
    """A path procmgmt was to create is a symlink, or not what it must be.

    Both a :class:`DeployError` (the command line prints it, no traceback) and an
    :class:`OSError` (callers that tolerate a failing write keep doing so)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(errno.ELOOP, f"{path} {problem}; procmgmt does not write "
                         "through it: remove it and run the command again")
        self.filename = path

    def __str__(self) -> str:
        return str(self.strerror)


class LeftoverProcessesError(ProcmgmtError):
    """Processes of the deployment still run after undeploy."""


def _free_space(path: str) -> str:
    """``'12 KiB free of 2.0 MiB'`` on the file system holding ``path`` (or its nearest
    existing parent), empty when that cannot be told."""
    probe = path
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    try:
        st = os.statvfs(probe or "/")
    except OSError:
        return ""
    return f"{_size(st.f_bavail * st.f_frsize)} free of {_size(st.f_blocks * st.f_frsize)}"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns


def storage_error(exc: OSError, operation: str | None = None,
                  path: str | None = None) -> StorageError:
    """A :class:`StorageError` for ``exc``: what failed, where, why, and what helps."""
    where = path or exc.filename
    reason = exc.strerror or str(exc)
    head = f"cannot {operation}" if operation else "a file operation failed"
    text = f"{head}: {where}: {reason}" if where else f"{head}: {reason}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        free = _free_space(str(where)) if where else ""
        text += (f" ({free})" if free else "") + "; free some space and try again"
    elif exc.errno == errno.EROFS:
        text += "; the file system is mounted read-only: remount it read-write or use " \
                "another --state-dir"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        text += "; check the owner and mode of that path (or run as its owner)"
    return StorageError(text)


@contextmanager
def storage(operation: str, path: str | None = None) -> Iterator[None]:
    """Turn an ``OSError`` inside the block into a :class:`StorageError` naming
    ``operation`` and ``path`` (the failing file, when the error names one)."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, (DeployError, BlockingIOError, InterruptedError, ChildProcessError,
                            ProcessLookupError)):
            raise
        raise storage_error(exc, operation, exc.filename or path) from None
