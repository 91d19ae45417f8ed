"""Shared fixtures: golden-file updating, example paths, fixed settings; the lane rules.

The lane rules (tests/_lanes.py) skip a test marked ``requires_tool(...)`` when a
program is missing and one marked ``root`` unless it runs as root, always
saying what would enable it; the session ends with one line counting the
skips by reason.
"""

from __future__ import annotations

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
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.option.collectonly:
        return
    line = _lanes.summarize(_SESSION["skips"]) or "skipped 0"
    deselected = len(_SESSION["deselected"])
    if deselected and config.option.markexpr:
        line += (f"; {deselected} deselected by -m {config.option.markexpr!r} "
                 "(the full suite: python3 tasks.py test)")
    elif deselected:
        line += f"; {deselected} deselected"
    reporter.write_line(line)


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

