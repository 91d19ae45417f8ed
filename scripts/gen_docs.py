#!/usr/bin/env python3
"""Regenerate the capability table in docs/backends.md from the backends' code.

The table between ``<!-- capabilities:begin -->`` and
``<!-- capabilities:end -->`` is what ``procmgmt backends`` prints (each
registered backend's :class:`~procmgmt.backends.base.Capabilities`), so the
docs cannot drift from the code: ``tests/unit/test_docs.py`` fails when the
committed table differs from what this script writes.

Usage::

    .venv/bin/python scripts/gen_docs.py          # rewrite docs/backends.md
    .venv/bin/python scripts/gen_docs.py --check  # exit 1 (with a diff) if stale
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "backends.md"
BEGIN = "<!-- capabilities:begin -->"
END = "<!-- capabilities:end -->"
COMMAND = ".venv/bin/python scripts/gen_docs.py"

sys.path.insert(0, str(REPO / "src"))

from procmgmt.backends import backend_names, get_backend  # noqa: E402
from procmgmt.backends.table import capability_table  # noqa: E402


def generated_block() -> str:
    """The text between the markers: a do-not-edit note, the table and each backend's notes."""
    names = backend_names()
    lines = [
        f"<!-- Generated from Backend.capabilities by `{COMMAND}`; do not edit by hand. -->",
        "",
        capability_table(names, markdown=True),
        "",
    ]
    for name in names:
        notes = get_backend(name).capabilities.notes
        if notes:
            lines.append(f"- **{name}**: {notes}")
    return "\n".join(lines).rstrip("\n") + "\n"


def regenerate(text: str) -> str:
    """``text`` with the block between the markers replaced by :func:`generated_block`."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"{DOC}: markers {BEGIN} ... {END} not found (in that order)")
    return text[: start + len(BEGIN)] + "\n" + generated_block() + text[end:]


def diff(old: str, new: str) -> str:
    """Unified diff between the committed and the generated doc."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        "docs/backends.md (committed)",
                                        "docs/backends.md (generated)"))


def main(argv: list[str] | None = None) -> int:
    """Rewrite the doc, or with --check report whether it is current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 and print a diff when the table is stale")
    args = parser.parse_args(argv)
    old = DOC.read_text(encoding="utf-8")
    new = regenerate(old)
    if args.check:
        if old != new:
            sys.stdout.write(diff(old, new))
            print(f"docs/backends.md is stale: run {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if old != new:
        DOC.write_text(new, encoding="utf-8")
        print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
