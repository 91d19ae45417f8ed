"""The capability table of ``procmgmt backends`` and docs/backends.md, from the code."""

from __future__ import annotations

from collections.abc import Sequence

from procmgmt.backends import get_backend

COLUMNS = ("backend", "prefers", "dependencies", "ordering", "user switching",
           "unprivileged", "readiness", "tested here")


def rows(names: Sequence[str]) -> list[tuple[str, ...]]:
    """One row per backend."""
    out: list[tuple[str, ...]] = []
    for name in names:
        c = get_backend(name).capabilities
        out.append((name, c.prefers, c.dependencies, c.ordering,
                    "yes" if c.user_switching else "no (warning)",
                    "yes" if c.user_mode else "no", c.readiness,
                    "run for real" if c.tested == "run" else "generated and validated"))
    return out


def capability_table(names: Sequence[str], markdown: bool = False) -> str:
    """A plain-text (or Markdown) table."""
    data = rows(names)
    if markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in data]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [COLUMNS, *data]) for i in range(len(COLUMNS))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [COLUMNS, *data])
