#!/usr/bin/env python3
"""Regenerate the backend tables in docs/backends.md and README.md from the code.

Each table sits between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``
markers and is built from the backend registry: the capability table and
the restart and stop table and the backends' own settings in docs/backends.md (what ``procmgmt backends``
and ``--help`` print), the short backend table in README.md. The docs
cannot drift from the code: ``tests/unit/test_docs.py`` fails when a
committed table differs from what this script writes, and a new backend
appears in every table without editing any.

Usage::

    .venv/bin/python scripts/gen_docs.py          # rewrite the files
    .venv/bin/python scripts/gen_docs.py --check  # exit 1 (with a diff) if stale
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "backends.md"
README = REPO / "README.md"
BEGIN = "<!-- capabilities:begin -->"
END = "<!-- capabilities:end -->"
COMMAND = ".venv/bin/python scripts/gen_docs.py"

sys.path.insert(0, str(REPO / "src"))

from procmgmt.backends import backend_names, get_backend, registry  # noqa: E402
from procmgmt.backends.table import (  # noqa: E402
    capability_table,
    lifecycle_table,
    render_table,
    settings_table,
)

NOTE = f"<!-- Generated from the backend registry by `{COMMAND}`; do not edit by hand. -->"


def generated_block() -> str:
    """The capability block: a do-not-edit note, the table and each backend's notes."""
    names = backend_names()
    lines = [NOTE, "", capability_table(names, markdown=True), ""]
    for name in names:
        notes = get_backend(name).capabilities.notes
        if notes:
            lines.append(f"- **{name}**: {notes}")
    return "\n".join(lines).rstrip("\n") + "\n"


def settings_block() -> str:
    """Every backend's own ``PROCMGMT_*`` variables (``Backend.own_settings``)."""
    return "\n".join([NOTE, "", settings_table(backend_names(), markdown=True)]) + "\n"


def lifecycle_block() -> str:
    """What each backend does with ``restart*`` and ``stop_timeout`` (``Lifecycle``)."""
    return "\n".join([NOTE, "", lifecycle_table(backend_names(), markdown=True)]) + "\n"


def readme_block() -> str:
    """README's short table: what each backend prefers, how it orders, who deploys,
    what our tests do with it."""
    data = []
    for name, cls in registry().items():
        c = cls.capabilities
        data.append((name, c.prefers.value if c.prefers else "-", c.ordering_detail,
                     ", ".join(p.value for p in sorted(c.privileges, key=lambda p: p.value))
                     if c.deploys else "does not deploy", c.tested.value))
    table = render_table(("backend", "mode it prefers", "dependencies written as",
                          "deploys as", "in our tests"), data, markdown=True)
    return "\n".join([NOTE, "", table]) + "\n"


def replace_block(text: str, marker: str, block: str, where: Path) -> str:
    """``text`` with the block between the ``marker`` markers replaced by ``block``."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < 0 or stop < start:
        raise ValueError(f"{where}: markers {begin} ... {end} not found (in that order)")
    return text[: start + len(begin)] + "\n" + block + text[stop:]


def regenerate(text: str) -> str:
    """docs/backends.md ``text`` with its generated blocks rewritten."""
    text = replace_block(text, "capabilities", generated_block(), DOC)
    text = replace_block(text, "lifecycle", lifecycle_block(), DOC)
    return replace_block(text, "settings", settings_block(), DOC)


def regenerate_readme(text: str) -> str:
    """README.md ``text`` with its backend table rewritten."""
    return replace_block(text, "backends", readme_block(), README)


def diff(old: str, new: str, name: str = "docs/backends.md") -> str:
    """Unified diff between the committed and the generated doc."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        f"{name} (committed)", f"{name} (generated)"))


def main(argv: list[str] | None = None) -> int:
    """Rewrite the docs, or with --check report whether they are current."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 and print a diff when a table is stale")
    args = parser.parse_args(argv)
    files: list[tuple[Path, Callable[[str], str]]] = [(DOC, regenerate),
                                                      (README, regenerate_readme)]
    stale = 0
    for path, rewrite in files:
        old = path.read_text(encoding="utf-8")
        new = rewrite(old)
        if old == new:
            continue
        if args.check:
            sys.stdout.write(diff(old, new, path.name))
            print(f"{path.name} is stale: run {COMMAND}", file=sys.stderr)
            stale = 1
        else:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path}")
    return stale


if __name__ == "__main__":
    sys.exit(main())
