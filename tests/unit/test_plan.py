"""The switch plan is a pure diff by content hash."""

from __future__ import annotations

from procmgmt.deploy.plan import compute_plan
from procmgmt.manifest import DeployedProcess, Generation


def gen(backend: str, *procs: tuple[str, str]) -> Generation:
    return Generation(backend, "/g", tuple(DeployedProcess(n, h, f"/s/{h}-{n}", i)
                                           for i, (n, h) in enumerate(procs)))


def test_first_deploy_starts_everything_in_order() -> None:
    """Nothing deployed: start all, in the generation's order."""
    new = gen("sysvinit", ("a", "1"), ("b", "2"))
    p = compute_plan(None, new)
    assert [x.name for x in p.start] == ["a", "b"]
    assert not p.stop and not p.keep


def test_unchanged_kept_changed_restarted_obsolete_stopped_in_reverse() -> None:
    """Same hash stays; a changed process is stopped and started; stops run in reverse."""
    old = gen("sysvinit", ("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"))
    new = gen("sysvinit", ("a", "1"), ("b", "2x"), ("e", "5"))
    p = compute_plan(old, new)
    assert [x.name for x in p.stop] == ["d", "c", "b"]
    assert [x.name for x in p.start] == ["b", "e"]
    assert [x.name for x in p.keep] == ["a"]
    assert p.changed == ["b"]
    assert "restart  b" in p.describe()
    assert "stop     d" in p.describe()


def test_noop() -> None:
    """Switching to an identical generation does nothing."""
    g = gen("supervisord", ("a", "1"))
    assert compute_plan(g, g).is_noop()


def test_backend_change_moves_everything() -> None:
    """Another process manager: every old process stops, every new one starts."""
    old = gen("sysvinit", ("a", "1"))
    new = gen("supervisord", ("a", "1"))
    p = compute_plan(old, new)
    assert [x.name for x in p.stop] == ["a"]
    assert [x.name for x in p.start] == ["a"]
