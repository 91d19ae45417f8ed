"""POSIX shell quoting shared by every backend that writes shell scripts."""

from __future__ import annotations

import shlex
from collections.abc import Iterable


def quote(word: str) -> str:
    """One shell word, single-quoted unless it is plainly safe."""
    return shlex.quote(word)


def command_line(argv: Iterable[str]) -> str:
    """A command line whose words reach the program exactly as given."""
    return " ".join(quote(a) for a in argv)


def export_lines(environment: dict[str, str]) -> list[str]:
    """``NAME='value'; export NAME`` lines, sorted by name (stable output)."""
    return [f"{k}={quote(v)}; export {k}" for k, v in sorted(environment.items())]
