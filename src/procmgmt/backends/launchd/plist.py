"""A launchd job's property list: its label, where it lives, and its XML text.

The native model is the plist dictionary itself; keys starting with ``_`` are
procmgmt's and are never written. ``plistlib`` renders the types; the result
must read back equal and pass :mod:`.schema`.
"""

from __future__ import annotations

import math
import plistlib
from collections.abc import Mapping
from typing import Any

from procmgmt.backends.launchd.schema import check_plist

DEFAULT_PREFIX = "org.procmgmt."
DAEMONS_DIR = "Library/LaunchDaemons"
AGENTS_DIR = "Library/LaunchAgents"


def label_of(name: str, prefix: str) -> str:
    """The job label of process ``name``."""
    return f"{prefix}{name}"


def plist_path(label: str, privileged: bool) -> str:
    """Where the plist lives in the store entry (the same layout as on macOS)."""
    return f"{DAEMONS_DIR if privileged else AGENTS_DIR}/{label}.plist"


def find_none(value: Any, where: str = "") -> str | None:
    """The dotted path of the first None inside ``value`` (sorted keys), or None."""
    if value is None:
        return where or "<top>"
    if isinstance(value, Mapping):
        for key in sorted(value, key=str):
            found = find_none(value[key], f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_none(item, f"{where}[{i}]")
            if found:
                return found
    return None


def _equal(a: Any, b: Any) -> bool:
    """Plist equality: tuples read back as lists, NaN equals NaN."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and bool(a == b)


def render_plist(job: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The XML plist of a job dictionary and the schema warnings.

    Raises ValueError for a None value (naming the key), a value plistlib
    cannot write, a plist that would not read back equal, or a type error
    against the launchd schema.
    """
    missing = find_none(job)
    if missing:
        raise ValueError(f"launchd key {missing} is None: remove the key or give it a value")
    report = check_plist(job)
    if report.errors:
        raise ValueError("launchd plist: " + "; ".join(report.errors))
    try:
        data = plistlib.dumps(dict(job), fmt=plistlib.FMT_XML, sort_keys=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"launchd plist cannot be written: {exc}") from None
    if not _equal(plistlib.loads(data), job):
        raise ValueError("launchd plist does not read back as written (a string with a "
                         "carriage return?)")
    return data.decode("utf-8"), report.warnings
