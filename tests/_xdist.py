"""The suite over pytest-xdist workers: each test on its own, each group together.

``python3 tasks.py test`` runs the tests in xdist workers (tasks.WORKERS). Most tests may
run beside any other; a test marked ``xdist_group(NAME)`` runs on the same
worker as every other test of that group, one after another (tests/conftest.py
puts every test marked ``root`` in the group ``accounts``: they create and
delete accounts with fixed names and compare the account database before and
after).

Why not xdist's own ``--dist loadgroup``: it marks a grouped test by appending
``@NAME`` to ``item._nodeid``, which pytest 9 no longer reads (a node's id is
``item._id``), so the groups are silently ignored. Here each worker writes the
group of each of its tests to a file once it has collected them, and the
controller's scheduler (xdist's load-scope scheduler, with one test per work
unit unless grouped) reads them before it hands out work. Groups go first
(the scheduler starts with the largest units), so a long group does not end
up as the last thing running.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

#: workerinput key: the directory where workers write their groups.
DIR_KEY = "procmgmt_groups_dir"
#: The controller's directory for the workers' groups (made for the first worker).
_DIRECTORY: list[str] = []


def groups_of(items: list[pytest.Item]) -> dict[str, str]:
    """nodeid -> group name of every grouped test: its ``xdist_group`` mark, or else
    the instance of a module-scoped fixture it uses (:func:`shared_fixture`)."""
    groups = {}
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None:
            groups[item.nodeid] = str(mark.args[0] if mark.args
                                      else mark.kwargs.get("name", "default"))
        elif (shared := shared_fixture(item)) is not None:
            groups[item.nodeid] = shared
    return groups


def shared_fixture(item: pytest.Item) -> str | None:
    """The module-scoped fixture instances ``item`` uses, as a group name; None if none.

    Such a fixture is set up once per worker that runs a test of it: a booted
    container, a deployment or three sshd hosts split over two workers would be
    made twice (and twice at once). So the tests that share one instance (one
    module, one parameter of a parametrized fixture) go to one worker together,
    and the instances of different parameters still go to different workers."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    callspec = getattr(item, "callspec", None)
    shared = []
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name)
        if defs and defs[-1].scope in ("module", "package", "class"):
            param = callspec.params.get(name) if callspec is not None else None
            shared.append(name if param is None else f"{name}={param}")
    if not shared:
        return None
    return f"{item.nodeid.split('::')[0]}::{','.join(sorted(shared))}"


def configure_node(node: Any) -> None:
    """On the controller, before a worker starts: where it writes its groups."""
    if not _DIRECTORY:
        _DIRECTORY.append(tempfile.mkdtemp(prefix="pytest-xdist-groups-"))
    node.workerinput[DIR_KEY] = _DIRECTORY[0]


def write_groups(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker, once collected: write its tests' groups for the controller."""
    workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
    directory = workerinput.get(DIR_KEY)
    if directory is None:
        return
    path = Path(directory) / f"{workerinput['workerid']}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups_of(items)), encoding="utf-8")
    os.replace(tmp, path)


def cleanup() -> None:
    """On the controller, at the end: remove the groups' directory."""
    while _DIRECTORY:
        shutil.rmtree(_DIRECTORY.pop(), ignore_errors=True)


class GroupScheduling(LoadScopeScheduling):
    """xdist's scope scheduler where a scope is a test, or the group of a grouped test."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        self.groups: dict[str, str] = {}

    def schedule(self) -> None:
        """Read the workers' groups (every worker has collected), then distribute."""
        if self.collection is None and _DIRECTORY:
            for path in sorted(Path(_DIRECTORY[0]).glob("*.json")):
                self.groups.update(json.loads(path.read_text(encoding="utf-8")))
        super().schedule()

    def _split_scope(self, nodeid: str) -> str:
        group = self.groups.get(nodeid)
        return f"group:{group}" if group is not None else nodeid
