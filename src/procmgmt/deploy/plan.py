"""The switch plan: a pure diff of two generations by per-process content hash.

A process whose rendered files are unchanged has the same hash and is left
alone; a changed one appears in both ``stop`` (its old version) and
``start`` (its new version). Stops run in reverse start order of the old
generation, starts in start order of the new one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from procmgmt.manifest import DeployedProcess, Generation


@dataclass
class Plan:
    """What a switch does."""

    stop: list[DeployedProcess] = field(default_factory=list)
    start: list[DeployedProcess] = field(default_factory=list)
    keep: list[DeployedProcess] = field(default_factory=list)
    #: Old processes whose new version has different files (subset of stop/start names).
    changed: list[str] = field(default_factory=list)

    def is_noop(self) -> bool:
        """Nothing to stop and nothing to start."""
        return not self.stop and not self.start

    def describe(self) -> list[str]:
        """Human-readable lines: what stops, starts, restarts and stays."""
        changed = set(self.changed)
        lines = []
        for p in self.stop:
            if p.name not in changed:
                lines.append(f"stop     {p.name}")
        for p in self.start:
            verb = "restart " if p.name in changed else "start   "
            lines.append(f"{verb} {p.name}")
        for p in self.keep:
            lines.append(f"keep     {p.name}")
        if not lines:
            lines.append("nothing deployed, nothing to do")
        return lines


def compute_plan(old: Generation | None, new: Generation) -> Plan:
    """Diff ``old`` (None: nothing deployed) against ``new``."""
    if old is None:
        return Plan(start=list(new.processes))
    if old.backend != new.backend:
        # Another process manager: everything moves.
        return Plan(stop=list(reversed(old.processes)), start=list(new.processes))
    old_hashes = {p.hash for p in old.processes}
    new_hashes = {p.hash for p in new.processes}
    stop = [p for p in reversed(old.processes) if p.hash not in new_hashes]
    start = [p for p in new.processes if p.hash not in old_hashes]
    keep = [p for p in new.processes if p.hash in old_hashes]
    changed = sorted({p.name for p in stop} & {p.name for p in start})
    return Plan(stop=stop, start=start, keep=keep, changed=changed)
