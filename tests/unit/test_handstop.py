"""The stopped-by-hand record and the dependency closures of start/stop."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from procmgmt.deploy import handstop
from procmgmt.deploy.control import dependencies, dependents
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import resolve


def _gen(**hashes: str) -> Generation:
    deps = {"app": ("base",), "web": ("app",)}
    return Generation("sysvinit", "/x", tuple(
        DeployedProcess(name, h, "/x/" + name, i, deps.get(name, ()))
        for i, (name, h) in enumerate(hashes.items())))


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_record_mode_and_hash_matching(tmp_path: Path, umask: int) -> None:
    """Written 0644 whatever the umask; an entry counts only for the same hash;
    a switch keeps only the entries of processes it keeps unchanged."""
    settings = resolve({"state_dir": str(tmp_path)})
    gen = _gen(base="h1", app="h2", web="h3", solo="h4")
    old = os.umask(umask)
    try:
        handstop.mark(settings, [p for p in gen.processes if p.name in ("app", "solo")])
    finally:
        os.umask(old)
    path = handstop.record_path(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert handstop.held(settings, gen) == {"app", "solo"}
    assert handstop.held(settings, _gen(base="h1", app="changed", web="h3", solo="h4")) \
        == {"solo"}
    keep = [p for p in gen.processes if p.name != "solo"]
    assert handstop.kept_by_switch(settings, keep) == {"app"}
    assert handstop.read(settings) == {"app": "h2"}
    handstop.clear(settings, ["app"])
    assert not os.path.exists(path)
    assert [f for f in os.listdir(settings.profiles_dir) if "stopped" in f] == []


def test_closures() -> None:
    """dependents and dependencies are transitive and in start order."""
    gen = _gen(base="1", app="2", web="3", solo="4")
    assert [p.name for p in dependents(gen, {"base"})] == ["app", "web"]
    assert [p.name for p in dependencies(gen, {"web"})] == ["base", "app"]
    assert dependents(gen, {"solo"}) == [] and dependencies(gen, {"base"}) == []
