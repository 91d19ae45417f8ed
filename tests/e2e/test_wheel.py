"""What users install: the wheel built from this checkout, in a fresh virtual environment.

Every other test imports procmgmt from the source tree (an editable install), so a
file missing from the wheel (package data such as shell templates read with
``importlib.resources``) would go unnoticed until a user's ``pip install .`` or
``pipx install .``. This test builds the sdist and, from it, the wheel with
``python -m build`` (what those commands do), checks that every file of the
source package is in the wheel, installs the wheel into a new virtual
environment, and from there, in a directory outside the checkout, deploys
examples/webapps with the embedded supervisord as an unprivileged deployment
into a temporary state dir: both webapps answer over HTTP, ``status`` says up,
undeploy leaves no process.

Building needs the network (or a pip mirror) for setuptools, like ``pip install .``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.testing import _rmtree
from tests.conftest import EXAMPLES, REPO
from tests.e2e.util import free_port_block, kill_leftovers, wait_http, wait_no_leftovers

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

#: What a build of the checkout must not see: local state, caches, other builds.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "build", "dist", "__pycache__", "*.pyc",
                                     "*.egg-info", ".pytest_cache", ".mypy_cache",
                                     ".ruff_cache", ".hypothesis")


def run(argv: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a command outside the checkout and the test's venv; fail the test with its
    output on an error."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=400, check=False)
    assert proc.returncode == 0, (f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n"
                                  f"{proc.stdout}\n{proc.stderr}")
    return proc


def source_package_files() -> set[str]:
    """Every file of src/procmgmt a user's install needs, relative to src/."""
    src = REPO / "src"
    return {str(p.relative_to(src)) for p in (src / "procmgmt").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@contextlib.contextmanager
def short_tmp() -> Iterator[Path]:
    """A private dir with a short path: supervisord's socket lives below the state dir,
    and unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="pmw-", dir="/tmp"))
    try:
        yield path
    finally:
        _rmtree(str(path))  # the store is read-only: made writable first


def test_the_wheel_ships_everything_and_deploys_from_a_fresh_venv(tmp_path: Path) -> None:
    """sdist -> wheel with every package file -> fresh venv -> deploy, answer, undeploy."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCES)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", dist, source], cwd=tmp_path)
    [wheel] = dist.glob("procmgmt-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    missing = sorted(source_package_files() - shipped)
    assert not missing, (f"{wheel.name} lacks {missing}: list them in pyproject.toml "
                         "[tool.setuptools.package-data]")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "-c", REPO / "constraints.txt", wheel], cwd=tmp_path)
    where = run([python, "-c", "import procmgmt; print(procmgmt.__file__)"], cwd=tmp_path)
    assert where.stdout.startswith(str(env_dir)), f"procmgmt imported from {where.stdout}"

    procmgmt = env_dir / "bin" / "procmgmt"
    base = free_port_block(2)
    with short_tmp() as state:
        settings = ["--process-manager", "supervisord", "--force-disable-user-change",
                    "--state-dir", str(state), "--extra-params", json.dumps({"port_base": base})]
        try:
            run([procmgmt, "switch", *settings, EXAMPLES / "webapps" / "processes.py"],
                cwd=tmp_path)
            for port in (base, base + 1):
                assert f"listening on port: {port}" in wait_http(port)
            status = json.loads(run([procmgmt, "status", "--json", *settings],
                                    cwd=tmp_path).stdout)
            assert sorted(p["name"] for p in status["processes"]) == ["webapp", "webapp1"]
            assert all(p["pid"] for p in status["processes"])
            run([procmgmt, "switch", "--undeploy", *settings], cwd=tmp_path)
            assert wait_no_leftovers(str(state)) == []
        finally:
            kill_leftovers(str(state))
