"""The suite's own xdist scheduling (tests/_xdist.py) and tasks.py's worker count."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tasks

from tests.conftest import REPO

#: Three grouped tests, two free ones, four on each instance of a module-scoped
#: fixture, one skip: each writes the worker it ran on.
SAMPLE = '''
import os
import pytest

def record(tmp_name):
    out = os.environ["PM_SAMPLE_OUT"]
    with open(os.path.join(out, tmp_name), "w") as f:
        f.write(os.environ.get("PYTEST_XDIST_WORKER", "none"))

@pytest.mark.xdist_group("accounts")
@pytest.mark.parametrize("n", range(3))
def test_grouped(n):
    record(f"grouped-{n}")

@pytest.mark.parametrize("n", range(2))
def test_free(n):
    record(f"free-{n}")

@pytest.fixture(scope="module", params=["a", "b"])
def shared(request):
    return request.param

@pytest.mark.parametrize("n", range(4))
def test_shared(shared, n):
    record(f"shared-{shared}-{n}")

def test_skipped():
    pytest.skip("a sample skip")

@pytest.mark.slow_sample
def test_deselected():
    pass
'''


@pytest.mark.e2e
def test_grouped_tests_share_a_worker_and_skips_are_counted(tmp_path: Path) -> None:
    """Under ``-n 2`` the tests of a group run on one worker, as do the tests of one
    instance of a module-scoped fixture (set up once, not once per worker); the
    skip line counts a skip that happened on a worker, and the deselected tests
    reported by the workers."""
    project = tmp_path / "sample"
    project.mkdir()
    (project / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n"
                                         "from tests.conftest import ACCOUNTS_GROUP  # noqa\n")
    (project / "pytest.ini").write_text(textwrap.dedent("""\
        [pytest]
        markers =
            slow_sample: deselected in the sample
            root(why): see tests/conftest.py
            requires_tool(*names): see tests/conftest.py
        """))
    (project / "test_sample.py").write_text(SAMPLE)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PM_SAMPLE_OUT": str(out)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider",
                           "-m", "not slow_sample", "-q", str(project)],
                          capture_output=True, text=True, env=env, cwd=project, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers = {p.name: p.read_text() for p in out.iterdir()}
    assert len(workers) == 13, workers
    assert len({workers[f"grouped-{n}"] for n in range(3)}) == 1, workers
    for param in "ab":
        assert len({workers[f"shared-{param}-{n}"] for n in range(4)}) == 1, workers
    assert all(w.startswith("gw") for w in workers.values()), workers
    last = proc.stdout.strip().splitlines()[-1]
    assert last == ("skipped 1: 1 other (their reasons: pytest -rs); 1 deselected by "
                    "-m 'not slow_sample' (the full suite: python3 tasks.py test)"), proc.stdout


@pytest.mark.parametrize(("args", "added"), [
    ([], ["-n", tasks.WORKERS]), (["-x", "tests/e2e"], ["-n", tasks.WORKERS]),
    (["-n", "0"], []), (["-n4"], []), (["--numprocesses=3"], []), (["-p", "no:xdist"], []),
    (["--no-header"], ["-n", tasks.WORKERS])])
def test_tasks_adds_its_workers_unless_chosen(args: list[str], added: list[str]) -> None:
    assert tasks.workers(args) == added


def test_each_worker_picks_ports_from_its_own_share(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.e2e.util import worker_share

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert worker_share(20000, 32700) == (20000, 32700)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    shares = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        shares.append(worker_share(20000, 32700))
    assert shares == [(20000, 26350), (26350, 32700)]
