"""The directives systemd knows in a ``.service`` unit, and the unknown ones of a model.

The list (``directives.txt``) is not written by hand: scripts/systemd_directives.py
extracts it from the installed systemd's unit-file parser table, so a misspelt
key is reported at build time instead of being ignored by systemd with a log line.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from procmgmt.backends.systemd.unit import SECTION_ORDER

#: ``Section Key`` lines of every directive systemd knows in a ``.service`` unit,
#: generated from the installed systemd by scripts/systemd_directives.py.
DIRECTIVES_FILE = "directives.txt"
#: systemd's convention for extensions: keys and sections starting with ``X-``
#: are kept and ignored by systemd, never reported as unknown.
EXTENSION_PREFIX = "X-"


@functools.cache
def known_directives() -> dict[str, frozenset[str]]:
    """Section -> the keys systemd knows there."""
    package = resources.files("procmgmt.backends.systemd")
    text = package.joinpath(DIRECTIVES_FILE).read_text(encoding="utf-8")
    table: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            section, key = line.split()
            table.setdefault(section, set()).add(key)
    return {section: frozenset(keys) for section, keys in table.items()}


def _suggestion(word: str, candidates: Iterable[str]) -> str:
    options = sorted(candidates)
    exact = [c for c in options if c.lower() == word.lower()]
    close = exact or difflib.get_close_matches(word, options, n=3, cutoff=0.75)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def directive_problems(native: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field path, message)`` for every section and key of ``native`` systemd does
    not know (systemd itself would log "Unknown key ..., ignoring" and run the unit
    without it). ``X-`` sections and keys are systemd's extension convention."""
    known = known_directives()
    problems: list[tuple[str, str]] = []
    for raw_section, body in native.items():
        section = str(raw_section)
        if section.startswith(EXTENSION_PREFIX) or body is None:
            continue
        if section not in known:
            problems.append((section, f"unknown systemd section [{section}]"
                             + (_suggestion(section, known) or
                                f"; a .service unit has [{'], ['.join(SECTION_ORDER)}]")
                             + f" (extension sections start with {EXTENSION_PREFIX})"))
            continue
        if not isinstance(body, Mapping):
            continue  # render_unit says what is wrong with it
        for raw_key, value in body.items():
            key = str(raw_key)
            if key.startswith(EXTENSION_PREFIX) or key in known[section] or value is None:
                continue
            elsewhere = [s for s in SECTION_ORDER if s != section and key in known.get(s, ())]
            hint = (f"; {key}= belongs in [{elsewhere[0]}]" if elsewhere
                    else _suggestion(key, known[section]))
            problems.append((f"{section}.{key}", f"unknown systemd directive {key}= in "
                             f"[{section}]{hint} (systemd would ignore it; extension keys "
                             f"start with {EXTENSION_PREFIX})"))
    return problems
