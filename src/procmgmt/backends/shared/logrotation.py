"""Size-based log rotation of the files a backend's generated scripts write.

The sysvinit and bsdrc scripts write a foreground process's output through
the rotating writer (``backends/sh/log_writer.sh``) when ``--log-max-bytes``
is set. Both carry the setting in their native model as ``log_rotation``
(``{"max_bytes": N, "backups": K}``, or None: the log only grows), so an
override can change or remove it; this module is the one reading of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from procmgmt.settings import Settings


def native_rotation(settings: Settings) -> dict[str, int] | None:
    """The ``log_rotation`` of the settings (--log-max-bytes, --log-backups)."""
    rotation = settings.log_rotation()
    return None if rotation is None else {"max_bytes": rotation[0], "backups": rotation[1]}


def rotation_of(native: Mapping[str, Any]) -> tuple[int, int] | None:
    """(max bytes, backups) of a native model's ``log_rotation``; ValueError names
    the bad value."""
    raw = native.get("log_rotation")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"log_rotation must be None or a dict, got {raw!r}")
    max_bytes, backups = raw.get("max_bytes"), raw.get("backups")
    if not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes <= 0:
        raise ValueError(f"log_rotation.max_bytes must be a positive integer, got {max_bytes!r}")
    if not isinstance(backups, int) or isinstance(backups, bool) or backups < 0:
        raise ValueError(f"log_rotation.backups must be 0 or more, got {backups!r}")
    return max_bytes, backups
