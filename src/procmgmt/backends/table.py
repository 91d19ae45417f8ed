"""The tables of ``procmgmt backends``, docs/backends.md and the README, from the code.

Every cell comes from a registered backend's typed
:class:`~procmgmt.backends.base.Capabilities` or its declared settings, so
a new backend appears in all of them without editing any.
"""

from __future__ import annotations

from collections.abc import Sequence

from procmgmt.backends import registry
from procmgmt.backends.base import Capabilities, Lifecycle, Privilege, Support
from procmgmt.numbers import format_seconds

COLUMNS = ("backend", "prefers", "dependencies", "ordering", "user switching",
           "deploys as", "readiness", "pid files", "tested here")
SETTING_COLUMNS = ("backend", "variable", "kind", "default", "meaning")
LIFECYCLE_COLUMNS = ("backend", "without restart=", "no", "on-failure", "always",
                     "restart_delay", "restart_max", "stop_timeout", "without stop_timeout=",
                     "liveness")


def _privileges(c: Capabilities) -> str:
    if not c.deploys:
        return "does not deploy"
    return ", ".join(p.value for p in Privilege if p in c.privileges)


def capability_row(name: str, c: Capabilities) -> tuple[str, ...]:
    """One backend's cells, in :data:`COLUMNS` order."""
    return (name, c.prefers.value if c.prefers else "-", c.dependencies.value,
            f"{c.ordering.value}: {c.ordering_detail}", c.user_switching.value,
            _privileges(c), c.readiness.value, c.pid_files.value, c.tested.value)


def rows(names: Sequence[str]) -> list[tuple[str, ...]]:
    """One row per backend."""
    found = registry()
    return [capability_row(name, found[name].capabilities) for name in names]


def setting_rows(names: Sequence[str]) -> list[tuple[str, ...]]:
    """One row per declared backend setting (``Backend.own_settings``)."""
    found = registry()
    return [(name, f.env, f.kind, f.describe_default(), f.help)
            for name in names for f in found[name].own_settings]


def lifecycle_row(name: str, lc: Lifecycle) -> tuple[str, ...]:
    """One backend's restart and stop cells, in :data:`LIFECYCLE_COLUMNS` order."""
    if lc.stop_timeout is Support.NOT_APPLICABLE:
        default_stop = "-"
    elif lc.default_stop_timeout is None:
        default_stop = "waits without SIGKILL"
    else:
        default_stop = f"{format_seconds(lc.default_stop_timeout)} s"
    return (name, lc.default_restart or "-",
            *(lc.restart_support(p).value for p in ("no", "on-failure", "always")),
            lc.restart_delay.value, lc.restart_max.value, lc.stop_timeout.value, default_stop,
            lc.liveness.value)


def lifecycle_rows(names: Sequence[str]) -> list[tuple[str, ...]]:
    """One row per backend: what it does with restart policies and stop timeouts."""
    found = registry()
    return [lifecycle_row(name, found[name].capabilities.lifecycle) for name in names]


def render_table(columns: Sequence[str], data: Sequence[Sequence[str]],
                 markdown: bool = False) -> str:
    """A plain-text (or Markdown) table."""
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in data]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [columns, *data]) for i in range(len(columns))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [columns, *data])


def capability_table(names: Sequence[str], markdown: bool = False) -> str:
    """The capability table of ``names``."""
    return render_table(COLUMNS, rows(names), markdown)


def lifecycle_table(names: Sequence[str], markdown: bool = False) -> str:
    """The restart and stop table of ``names``."""
    return render_table(LIFECYCLE_COLUMNS, lifecycle_rows(names), markdown)


def settings_table(names: Sequence[str], markdown: bool = False) -> str:
    """The backends' own settings."""
    return render_table(SETTING_COLUMNS, setting_rows(names), markdown)
