"""Reading the rcorder(8) header of an rc script: its PROVIDE/REQUIRE/BEFORE/KEYWORD block.

A header block is a run of lines that start with exactly ``# PROVIDE:``,
``# REQUIRE:``, ``# BEFORE:`` or ``# KEYWORD:`` (the historical plurals
``REQUIRES``, ``PROVIDES`` and ``KEYWORDS`` are accepted too). Lines
before the block are skipped; the first line after the block that does
not follow the format ends parsing, so a header written further down the
file is silently ignored, as rcorder does.

The activator reads the deployed scripts back with this, so the order it
checks is the one the files (overrides included) declare.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_HEADER = re.compile(r"^# (PROVIDES?|REQUIRES?|BEFORE|KEYWORDS?):(.*)$")


@dataclass(frozen=True)
class RcScript:
    """The header facts of one rc script."""

    path: str
    provides: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The file's base name (how rcorder's diagnostics name it)."""
        return os.path.basename(self.path)


def parse_header(text: str, path: str = "<text>") -> RcScript:
    """The PROVIDE/REQUIRE/BEFORE/KEYWORD block of one script's text."""
    values: dict[str, list[str]] = {"PROVIDE": [], "REQUIRE": [], "BEFORE": [], "KEYWORD": []}
    in_block = False
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m is None:
            if in_block:
                break
            continue
        in_block = True
        key = m.group(1)
        key = key[:-1] if key.endswith("S") and key != "BEFORE" else key
        values[key].extend(m.group(2).split())
    return RcScript(path, tuple(values["PROVIDE"]), tuple(values["REQUIRE"]),
                    tuple(values["BEFORE"]), tuple(values["KEYWORD"]))


def parse_file(path: str) -> RcScript:
    """:func:`parse_header` of a file (undecodable bytes do not stop the header scan)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_header(f.read(), path)
