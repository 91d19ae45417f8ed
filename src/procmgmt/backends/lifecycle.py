"""Refuse restart policies and stop timeouts a backend cannot carry.

Every backend declares in :class:`~procmgmt.backends.base.Lifecycle` which
restart policies it carries natively or by generated code, and whether it
can express ``restart_delay``, ``restart_max``, ``stop_timeout`` and a
``liveness`` check. The
build checks a model against that declaration here, once for every backend,
before any translator runs: a translator then only writes what it declared,
and a value no backend file could carry is reported at the model's line
instead of being dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

from procmgmt.backends.base import BuildContext, Lifecycle, Support
from procmgmt.errors import Problem
from procmgmt.model.spec import ProcessSpec


def _carried(lifecycle: Lifecycle) -> str:
    policies = sorted(lifecycle.restart_native | lifecycle.restart_emulated)
    return ", ".join(repr(p) for p in policies)


def lifecycle_problems(lifecycle: Lifecycle, specs: Sequence[ProcessSpec],
                       ctx: BuildContext) -> list[Problem]:
    """One located problem per value of ``specs`` that ``lifecycle`` refuses."""
    rows: list[tuple[str, str, str]] = []
    for spec in specs:
        if spec.restart is not None and \
                lifecycle.restart_support(spec.restart) is Support.REFUSED:
            rows.append((spec.name, "restart", f"cannot carry restart={spec.restart!r} "
                         f"(it can: {_carried(lifecycle)}; without restart= it does "
                         f"{lifecycle.default_restart!r})"))
        for field, support in (("restart_delay", lifecycle.restart_delay),
                               ("restart_max", lifecycle.restart_max),
                               ("stop_timeout", lifecycle.stop_timeout)):
            if getattr(spec, field) is not None and support is Support.REFUSED:
                rows.append((spec.name, field, f"cannot carry {field}: leave it unset, "
                             "or see which backends can in docs/backends.md (restart "
                             "and stop)"))
        if spec.liveness is not None and lifecycle.liveness is Support.REFUSED:
            rows.append((spec.name, "liveness", "cannot carry a liveness check: leave it "
                         "unset, or see which backends can in docs/backends.md (restart "
                         "and stop)"))
    return ctx.problems(rows)
