"""One check for the numbers procmgmt interprets (seconds, not ports or IDs).

``float("nan")`` compares false with everything, so ``value <= 0`` lets it
through, and a NaN readiness timeout then never expires (or fails later as
"cannot convert float NaN to integer"); ``inf`` waits forever. Every number
of seconds a model or an override gives procmgmt goes through
:func:`seconds_problem`, so the rule exists once.
"""

from __future__ import annotations

import math
from typing import Any


def is_real(value: Any) -> bool:
    """An int or float that is not a bool and is finite (no NaN, no infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def seconds_problem(value: Any, *, zero_ok: bool = False) -> str | None:
    """None when ``value`` is a finite number of seconds above 0 (or equal, with
    ``zero_ok``); else what is wrong, for the message."""
    if is_real(value) and (value > 0 or (zero_ok and value == 0)):
        return None
    kind = "non-negative" if zero_ok else "positive"
    return f"must be a finite, {kind} number of seconds, got {value!r}"


def format_seconds(value: float) -> str:
    """A number of seconds as plain decimal text ("1.5", "10", never "1e-05"),
    the form every manager's configuration reads."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"
