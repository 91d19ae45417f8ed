"""CI smoke test of the benchmark suite: every benchmark runs at its smallest size.

No timing is asserted (CI machines are noisy); the test proves that the one
documented command works end to end, that every benchmark produces its rows
and results files, and that it leaves no process behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = ("eval", "activation", "supervisord", "switch", "readiness", "scale", "idle")


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_quick_suite_runs_every_benchmark(tmp_path: Path) -> None:
    """``bench/run.py --quick`` exits 0, writes latest.json/latest.md with rows of every
    benchmark and machine info, and no process tagged by the run survives."""
    # A short private dir for state and sockets (unix socket paths allow 107 bytes).
    work = tempfile.mkdtemp(prefix="pmbs-", dir="/dev/shm" if os.path.isdir("/dev/shm")
                            else None)
    try:
        env = {**os.environ, "PMBENCH_DIR": work}
        proc = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--quick",
                               "--out", str(tmp_path / "results")], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=170, check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "results" / "latest.json").read_text())
    assert data["errors"] == {}
    assert data["mode"] == "quick"
    assert {"cpu", "cores", "ram_gib", "kernel", "python", "date"} <= set(data["machine"])
    sys.path.insert(0, str(REPO))
    from bench import _runit, _s6, bench_network

    # The network benchmark has rows only where it can run (root, sshd, pyinfra), the
    # supervision benchmark where runit or s6 is installed.
    expected = set(BENCHMARKS) | ({"network"} if bench_network.missing() is None else set()) \
        | ({"supervision"} if _runit.available() or _s6.available() else set())
    assert {r["bench"] for r in data["rows"]} == expected
    for row in data["rows"]:
        assert row["seconds"] is None or row["seconds"] > 0, row
    md = (tmp_path / "results" / "latest.md").read_text()
    assert "| benchmark | case |" in md and data["machine"]["kernel"] in md
    # Every process of the run carried one of these tags in its environment.
    tags = [f"BENCH_TAG={t}\0".encode() for t in data["tags"]]
    assert tags
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                env_bytes = Path(f"/proc/{entry}/environ").read_bytes() + b"\0"
            except OSError:
                continue
            if any(t in env_bytes for t in tags):
                left.append(int(entry))
    assert not left, f"processes left behind: {left}"


def test_table_and_exponent_helpers() -> None:
    """The scaling fit gives 1 for linear and 2 for quadratic data, and the table lists rows."""
    sys.path.insert(0, str(REPO))
    from bench import _util
    from bench.run import table

    assert _util.fit_exponent([100, 1000, 10000], [0.1, 1.0, 10.0]) == pytest.approx(1.0)
    assert _util.fit_exponent([10, 100], [1.0, 100.0]) == pytest.approx(2.0)
    text = table([{"bench": "b", "case": "c", "n": 5, "seconds": 1.5, "ratio": 2.0,
                   "ratio_to": "peer", "extra": {}, "target": "t", "met": False}])
    assert "NO" in text and "1.500 s" in text
