"""The public test driver (procmgmt.testing) on the webapps example."""

from __future__ import annotations

from pathlib import Path

import pytest

from procmgmt.testing import Deployment, deployed
from tests.conftest import EXAMPLES
from tests.e2e.util import free_port_block, processes_mentioning


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sysvinit", "supervisord"])
def test_deployed_context_manager(backend: str, tmp_path: Path) -> None:
    """deployed() brings the model up, answers, and leaves nothing behind."""
    base = free_port_block(2)
    with deployed(EXAMPLES / "webapps" / "processes.py", backend=backend,
                  state_dir=tmp_path / "s", extra_params={"port_base": base}) as d:
        assert d.instances["webapp"]["port"] == base
        assert f"listening on port: {base + 1}" in d.http_get("webapp1")
        status = d.status()
        assert all(running for running, _ in status.values())
    assert processes_mentioning(str(tmp_path / "s")) == []


@pytest.mark.e2e
def test_fixture(procmgmt_deploy: object) -> None:
    """The pytest fixture registered by the plugin works for users' tests."""
    base = free_port_block(2)
    assert callable(procmgmt_deploy)
    d = procmgmt_deploy(EXAMPLES / "webapps" / "processes.py", backend="sysvinit",
                        extra_params={"port_base": base})
    assert isinstance(d, Deployment)
    assert "listening on port" in d.http_get("webapp")
