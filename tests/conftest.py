"""Shared fixtures: golden-file updating, example paths, fixed settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from procmgmt.settings import Settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current generators (review the diff!)")


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


def is_root() -> bool:
    """True when the tests run as root."""
    return os.geteuid() == 0
