"""``_common.as_user``: a root initialize step runs one command as the service user.

Under systemd, ``su`` opens a PAM session whose ``pam_systemd`` starts the
user's ``user@UID.service``: its processes outlived PostgreSQL's ``initdb``
and made ``userdel`` fail on undeploy (found by tests/e2e/test_systemd_services.py).
The snippet therefore uses ``setpriv`` (no PAM) and keeps ``su`` only as the
fallback where util-linux is missing. Both branches run for real here (as root).
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.services._common import as_user
from tests import _lanes

#: A command with quotes and a $ that must reach the user's shell unchanged.
COMMAND = """echo "it's $(id -u):$(id -g)" > "$0" """


def run_snippet(snippet: str, path_dirs: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    """Run ``snippet`` with /bin/sh as root, PATH limited to ``path_dirs``."""
    # The command writes to $0 of its inner shell: give the path through the snippet.
    script = snippet.replace('"$0"', str(out))
    return subprocess.run(["/bin/sh", "-c", script], env={"PATH": ":".join(path_dirs)},
                          capture_output=True, text=True, timeout=30, check=False)


def tool_dir(tmp_path: Path, tools: list[str], fake_su: bool) -> str:
    """A PATH dir with links to ``tools``; ``su`` is a recorder when ``fake_su``."""
    d = tmp_path / "bin"
    d.mkdir()
    for tool in tools:
        found = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        assert found, f"{tool} is not installed"
        (d / tool).symlink_to(found)
    if fake_su:
        (d / "su").write_text(f"#!/bin/sh\necho su-called > {tmp_path}/su-called\nexit 1\n")
        (d / "su").chmod(0o755)
    return str(d)


@pytest.fixture
def nobody() -> pwd.struct_passwd:
    """The ``nobody`` account (root only)."""
    _lanes.require_root("switching to another user")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' account")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A dir ``nobody`` can reach and write (pytest's tmp_path is under a 0700 dir)."""
    d = Path(tempfile.mkdtemp(prefix="pm-as-user-", dir="/tmp"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_no_owner_leaves_the_command_alone() -> None:
    """Without an owner (unprivileged deployment) the command is returned unchanged."""
    assert as_user(None, COMMAND) == COMMAND


@pytest.mark.requires_tool("setpriv")
def test_setpriv_switches_without_su(shared: Path, nobody: pwd.struct_passwd) -> None:
    """With setpriv on PATH the command runs as the user and its primary group, and su
    (whose PAM session would start a systemd user manager) is never called."""
    out = shared / "ids"
    path = tool_dir(shared, ["setpriv", "id", "echo"], fake_su=True)
    r = run_snippet(as_user("nobody", COMMAND), [path], out)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == f"it's {nobody.pw_uid}:{nobody.pw_gid}\n"
    assert not (shared / "su-called").exists(), "su was used although setpriv exists"


@pytest.mark.requires_tool("su")
def test_su_is_the_fallback(shared: Path, nobody: pwd.struct_passwd) -> None:
    """Without setpriv the same snippet falls back to su, with the same result."""
    out = shared / "ids"
    path = tool_dir(shared, ["su", "id", "echo"], fake_su=False)
    r = run_snippet(as_user("nobody", COMMAND), [path], out)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == f"it's {nobody.pw_uid}:{nobody.pw_gid}\n"
