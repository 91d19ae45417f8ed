"""Scenario 9 of nix-processmgmt's tests: agnostic JSON, translated late, runs for real.

``build -P none`` writes the webapp's spec; ``generate-config -P sysvinit
--force-disable-user-change webapp.json`` turns it into an init script; the
script's ``start`` brings up a daemonized webapp (``webapp.py -D``, as the
original checks for ``/bin/webapp -D``) that answers HTTP, and ``stop``
leaves nothing behind. Everything runs through the CLI in subprocesses,
with all state under ``tmp_path`` and a free high port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.util import (
    REPO,
    free_port_block,
    kill_leftovers,
    port_closed,
    wait_http,
    wait_no_leftovers,
)

pytestmark = pytest.mark.e2e


def procmgmt(*args: str | Path) -> str:
    """Run the CLI; its stdout (fails the test with both streams on a non-zero exit)."""
    proc = subprocess.run([sys.executable, "-m", "procmgmt", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"procmgmt {args[0]}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def test_build_none_then_generate_config_sysvinit_runs(tmp_path: Path) -> None:
    """webapp.json -> sysvinit script -> start: daemon answers; stop: nothing left."""
    base = free_port_block(2)
    state = tmp_path / "state"
    common = ["--state-dir", state, "--force-disable-user-change",
              "--extra-params", json.dumps({"port_base": base})]
    entry = Path(procmgmt("build", "-P", "none", *common,
                          REPO / "examples" / "webapps" / "processes.py").strip())
    spec = entry / "webapp.json"
    assert json.loads(spec.read_text())["daemon_extra_args"] == ["-D"]

    out = tmp_path / "out"
    procmgmt("generate-config", "-P", "sysvinit", *common, "-o", out, spec)
    # Only webapp.json was translated: webapp1 is no dependency of it.
    assert sorted(p.name for p in (out / "etc" / "rc.d" / "init.d").iterdir()) == ["webapp"]
    procmgmt("init-state", *common)
    script = out / "etc" / "rc.d" / "init.d" / "webapp"
    pid_file = state / "run" / "procmgmt-pid" / "webapp" / "webapp.pid"
    marker = str(state)
    try:
        started = subprocess.run([script, "start"], capture_output=True, text=True, timeout=60,
                                 check=False)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"listening on port: {base}" in wait_http(base)
        pid = int(pid_file.read_text().split()[0])
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")[:-1]
        # sysvinit prefers daemon mode: the process daemonized itself with -D.
        assert argv[-2:] == [os.fsencode(REPO / "examples" / "webapps" / "webapp.py"), b"-D"]

        stopped = subprocess.run([script, "stop"], capture_output=True, text=True, timeout=60,
                                 check=False)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert port_closed(base)
        assert not pid_file.exists()
        assert wait_no_leftovers(marker) == []
    finally:
        kill_leftovers(marker)
