"""'Did you mean ...?' for a misspelled name, the one way every message says it.

Used for subcommands, ``Process(...)`` keyword arguments and process names:
a typo should be answered with the fix, not only with "unknown".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``word``, None when none is close enough
    (difflib's ratio of at least 0.6, its default cut-off)."""
    matches = difflib.get_close_matches(word, list(candidates), n=1)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` to append to a message, or "" when nothing is close."""
    match = closest(word, candidates)
    return f"; did you mean {match!r}?" if match else ""
