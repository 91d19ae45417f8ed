"""nginx on the first target, the webapps round-robin over the others."""

from __future__ import annotations

from typing import Any


def distribution(infrastructure: dict[str, Any], processes: dict[str, Any]) -> dict[str, Any]:
    names = sorted(infrastructure)
    front, back = names[0], names[1:] or names[:1]
    placed: dict[str, Any] = {"nginx": front}
    webapps = sorted(n for n in processes if n.startswith("webapp"))
    for i, name in enumerate(webapps):
        placed[name] = back[i % len(back)]
    return placed
