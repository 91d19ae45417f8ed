"""``procmgmt network`` with a ``Local()`` target: pyinfra's ``@local`` connector.

No sshd and no root: the coordinator's own machine is the one target, with
procmgmt from the venv running the tests.
"""

from __future__ import annotations

import io
import os
import sys
import textwrap
from pathlib import Path

import pytest

from procmgmt.network.transition import Network
from procmgmt.settings import resolve

pytestmark = pytest.mark.e2e


def test_local_target_deploys_and_undeploys(tmp_path: Path) -> None:
    marker = f"pmnet-local-{os.getpid()}-{tmp_path.name}"
    (tmp_path / "infra.py").write_text(textwrap.dedent(f"""\
        from procmgmt.network import Local, Target

        def infrastructure():
            return [Target("here", Local(), "sysvinit", {str(tmp_path / "target")!r},
                           venv={sys.prefix!r})]
        """))
    (tmp_path / "dist.py").write_text(
        "def distribution(infrastructure, processes):\n"
        "    return {name: 'here' for name in processes}\n")
    (tmp_path / "model.py").write_text(textwrap.dedent(f"""\
        from procmgmt import Process

        def processes(settings):
            return {{"sleeper": Process(name="sleeper", foreground_process="/bin/sleep",
                                        foreground_process_args=["1000"],
                                        environment={{"MARKER": {marker!r}}})}}
        """))
    out = io.StringIO()
    net = Network(resolve({"state_dir": str(tmp_path / "coordinator")}), out)
    outcome = net.switch(str(tmp_path / "infra.py"), str(tmp_path / "dist.py"),
                         str(tmp_path / "model.py"))
    try:
        assert outcome.plan == {"here": ["start    sleeper"]} and outcome.number == 1
        assert _running(marker)
    finally:
        net.undeploy()
    assert not _running(marker)
    assert not list((tmp_path / "target").glob("lib/procmgmt/profiles/*.network-lock"))


def _running(marker: str) -> bool:
    needle = f"MARKER={marker}\0".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if needle in Path(f"/proc/{entry}/environ").read_bytes() + b"\0":
                    return True
            except OSError:
                continue
    return False
