"""Shared fixtures: golden-file updating, example paths, fixed settings; the lane rules.

The lane rules (tests/_lanes.py) skip a test marked ``requires_tool(...)`` when a
program is missing and one marked ``root`` unless it runs as root, always
saying what would enable it; the session ends with one line counting the
skips by reason.

``python3 tasks.py test`` runs the suite in pytest-xdist workers. Tests that
touch the machine's one account database (every test marked ``root``, and
modules marked ``xdist_group("accounts")``) create and delete accounts with
fixed names (the examples' accounts) and check them before and after, so they
form one group that a single worker runs one after another (tests/_xdist.py).
A root test marked ``own_accounts`` creates only names of its own (with the
worker's pid in them, or inside a container) and runs beside that group;
every other test runs beside any other. Under xdist the skip line still
counts every skip: test reports reach the controller, and each worker
reports how many tests ``-m``/``-k`` deselected.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from procmgmt.settings import Settings
from tests import _lanes

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current generators (review the diff!)")


#: Skip reasons of this session and the tests -m/-k deselected.
_SESSION: dict[str, list[str]] = {"skips": [], "deselected": []}
#: Deselected counts the xdist workers reported (each collects the whole suite).
_WORKER_DESELECTED: list[int] = []
#: The xdist group of the tests that create, delete or count accounts.
ACCOUNTS_GROUP = "accounts"


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """An xdist worker's temporary directories go to ``<basetemp>/gw0`` rather than
    ``<basetemp>/popen-gw0``: unix socket paths below ``tmp_path`` (107 bytes,
    supervisord's 99) stay as short as they can. SIGINT is not left ignored."""
    if _is_xdist_worker(config) and config.option.basetemp:
        worker = config.workerinput["workerid"]  # type: ignore[attr-defined]
        config.option.basetemp = str(Path(config.option.basetemp).with_name(worker))
    # Run from a background job of a script (``cmd &``), the suite starts with
    # SIGINT ignored, and every program it starts inherits that: the tests that
    # press Ctrl-C on procmgmt would find it deaf. Ctrl-C as a terminal sends it.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``-n`` (``--dist load``, the default, or ``loadgroup``): tests one by one,
    groups together (tests/_xdist.py)."""
    if config.option.dist not in ("load", "loadgroup"):
        return None
    from tests._xdist import GroupScheduling

    return GroupScheduling(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    from tests._xdist import configure_node

    configure_node(node)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test marked ``root`` joins the accounts group; an xdist worker then
    tells the controller the groups of its tests."""
    for item in items:
        if item.get_closest_marker("root") and not item.get_closest_marker("xdist_group") \
                and not item.get_closest_marker("own_accounts"):
            item.add_marker(pytest.mark.xdist_group(ACCOUNTS_GROUP))
    if _is_xdist_worker(config):
        from tests._xdist import write_groups

        write_groups(config, items)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The one rule: root first, then every program the test declares."""
    for mark in item.iter_markers("root"):
        reason = _lanes.root_reason(*mark.args)
        if reason:
            _lanes.skip(reason)
    for mark in item.iter_markers("requires_tool"):
        for name in mark.args:
            reason = _lanes.missing_reason(name)
            if reason:
                _lanes.skip(reason)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _SESSION["deselected"] += [item.nodeid for item in items]


def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker: hand the deselected count to the controller, which
    collects nothing itself (skips reach it as test reports)."""
    if _is_xdist_worker(session.config):
        session.config.workeroutput["deselected"] = len(_SESSION["deselected"])  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """On the xdist controller: a worker's deselected count (each worker has the same)."""
    output = getattr(node, "workeroutput", None) or {}
    if "deselected" in output:
        _WORKER_DESELECTED.append(int(output["deselected"]))


def _note_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and isinstance(report.longrepr, tuple) and not hasattr(report, "wasxfail"):
        _SESSION["skips"].append(str(report.longrepr[2]).removeprefix("Skipped: "))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_skip(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note_skip(report)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The last line of the run: what was skipped and the command that would run it.

    Written after pytest's own summary line, so that it is what a reader of
    ``python3 tasks.py test`` sees last.
    """
    if not _is_xdist_worker(config) and config.pluginmanager.has_plugin("xdist"):
        from tests._xdist import cleanup

        cleanup()
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.option.collectonly or _is_xdist_worker(config):
        return
    line = _lanes.summarize(_SESSION["skips"]) or "skipped 0"
    deselected = max([len(_SESSION["deselected"]), *_WORKER_DESELECTED])
    if deselected and config.option.markexpr:
        line += (f"; {deselected} deselected by -m {config.option.markexpr!r} "
                 "(the full suite: python3 tasks.py test)")
    elif deselected:
        line += f"; {deselected} deselected"
    reporter.write_line(line)


#: Characters of the test's name in its ``tmp_path`` (pytest keeps 30). Unix socket
#: paths below it (supervisord's, at most 99 bytes) must fit, under an xdist
#: worker's directory too.
TMP_NAME_MAX = 20


@pytest.fixture
def tmp_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's ``tmp_path`` (a new directory per test) with a shorter name."""
    name = re.sub(r"\W", "_", request.node.name)[:TMP_NAME_MAX]
    return tmp_path_factory.mktemp(name, numbered=True)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when golden files are to be rewritten instead of compared."""
    return bool(request.config.getoption("--update-golden"))


def golden_settings(privileged: bool = False, backend: str = "sysvinit") -> Settings:
    """Deterministic settings for golden files: /srv/pm as the state dir."""
    state = "/srv/pm"
    return Settings(
        state_dir=state, runtime_dir=f"{state}/run", log_dir=f"{state}/log",
        tmp_dir=f"{state}/tmp", cache_dir=f"{state}/cache", spool_dir=f"{state}/spool",
        lock_dir=f"{state}/lock", lib_dir=f"{state}/lib",
        force_disable_user_change=not privileged, process_manager=backend,
        profile="processes", extra_params={}, calling_user="deployer",
        calling_group="deployer",
    )


@pytest.fixture
def examples() -> Path:
    """The examples directory."""
    return EXAMPLES

