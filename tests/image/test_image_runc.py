"""``procmgmt image`` images run for real: umoci unpacks them, runc runs them with
the host's network (as root, and rootless as a throw-away user), the webapps answer
on 127.0.0.1, and stopping the container leaves nothing running."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.cli.main import main
from tests.e2e.util import (
    REPO,
    add_own_account,
    free_port_block,
    kill_uid,
    own_account_name,
    port_closed,
    wait_http,
)
from tests.image.runc import Container, running

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.own_accounts,
              pytest.mark.requires_tool("umoci"), pytest.mark.requires_tool("runc")]

WEBAPPS = REPO / "examples" / "webapps" / "processes.py"
WEBAPPS_NGINX = REPO / "examples" / "webapps-nginx" / "processes.py"


def _image(out: Path, manager: str, model: Path, port_base: int, *extra: str) -> Path:
    tar = out / f"{manager}.tar"
    assert main(["image", "-P", manager, str(model), "-o", str(tar), "--name",
                 f"procmgmt/test:{manager}", "--extra-params",
                 json.dumps({"port_base": port_base}), *extra]) == 0
    return tar


def _uids(pids: list[int]) -> set[int]:
    uids = set()
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uids.add(int(next(line for line in status.splitlines()
                          if line.startswith("Uid:")).split()[1]))
    return uids


def _commands_of(uid: int) -> list[str]:
    """Command lines of the processes running as ``uid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _uids([int(entry)]) == {uid}:
            try:
                found.append(Path(f"/proc/{entry}/cmdline").read_bytes()
                             .replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return found


def _stopped_cleanly(container: Container, ports: list[int]) -> None:
    status = container.stop()
    assert status == 0, f"PID 1 did not exit 0 on SIGTERM ({status}):\n{container.output()}"
    assert container.listed() == []
    assert all(port_closed(p) for p in ports), container.output()


@pytest.mark.parametrize("manager", [
    "sysvinit",
    pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan")),
    "supervisord",
])
def test_privileged_image_runs_under_runc(tmp_path: Path, manager: str) -> None:
    """As root: PID 1 is root, the webapps run as the image's accounts and answer."""
    base = free_port_block(2)
    tar = _image(tmp_path, manager, WEBAPPS, base)
    with running(tar, manager, tmp_path, f"pmimg-{os.getpid()}-{manager}") as container:
        for port, name in ((base, "webapp"), (base + 1, "webapp1")):
            assert f"instance: {name}<" in wait_http(port, 60), container.output()
        uids = _uids(container.pids())
        assert 0 in uids and {u for u in uids if u} and min(u for u in uids if u) >= 10000, \
            f"uids {uids}: the webapps run as the image's accounts"
        _stopped_cleanly(container, [base, base + 1])


def test_unprivileged_image_runs_as_the_given_uid(tmp_path: Path) -> None:
    """``--user 4242:4242``: every process of the container, PID 1 included, is uid 4242."""
    base = free_port_block(2)
    tar = _image(tmp_path, "sysvinit", WEBAPPS, base, "--user", "4242:4242")
    with running(tar, "sysvinit", tmp_path, f"pmimg-{os.getpid()}-uid") as container:
        assert "instance: webapp1<" in wait_http(base + 1, 60), container.output()
        assert _uids(container.pids()) == {4242}
        _stopped_cleanly(container, [base, base + 1])


@pytest.fixture
def rootless_user() -> Iterator[tuple[str, Path]]:
    """A throw-away system user and a work directory it owns (outside the 0700
    pytest tree), both removed afterwards with whatever the user left running."""
    name = own_account_name("pmimg")
    work = Path(tempfile.mkdtemp(prefix="pmimg-", dir="/tmp"))
    work.chmod(0o755)
    add_own_account(name, "--no-create-home", "--shell", "/bin/sh")
    try:
        shutil.chown(work, name, name)
        yield name, work
    finally:
        kill_uid(pwd.getpwnam(name).pw_uid)
        subprocess.run(["userdel", name], check=False, capture_output=True)
        subprocess.run(["groupdel", name], check=False, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.requires_tool("s6-svscan")
def test_rootless_runc(rootless_user: tuple[str, Path]) -> None:
    """umoci --rootless and runc as an unprivileged user: the image's root is that user
    (``--user 0``: nothing switches user, as in any unprivileged deployment)."""
    user, work = rootless_user
    base = free_port_block(2)
    tar = _image(work, "s6", WEBAPPS, base, "--user", "0")
    cid = f"pmimg-{os.getpid()}-rootless"
    with running(tar, "s6", work / "c", cid, as_user=user) as container:
        assert "instance: webapp<" in wait_http(base, 60), container.output()
        # Rootless runc has no cgroup to list the container's pids from: the user's
        # processes are the container's (the user is this test's alone).
        mine = _commands_of(pwd.getpwnam(user).pw_uid)
        assert any("s6-svscan" in c for c in mine) and any("webapp.py" in c for c in mine), \
            mine
        _stopped_cleanly(container, [base, base + 1])


@pytest.mark.requires_tool("nginx")
@pytest.mark.parametrize("manager", ["sysvinit", "supervisord"])
def test_webapps_nginx_by_host_header(tmp_path: Path, manager: str) -> None:
    """nginx in the image (its mime.types carried from Debian's file list) proxies
    ``Host: webapp.local`` to the webapp."""
    base = free_port_block(81)
    tar = _image(tmp_path, manager, WEBAPPS_NGINX, base, "--list-closure")
    with running(tar, manager, tmp_path, f"pmimg-{os.getpid()}-ng-{manager}") as container:
        body = wait_http(base + 80, 60, host="webapp.local")
        deadline = time.monotonic() + 30
        while "instance: webapp<" not in body and time.monotonic() < deadline:
            time.sleep(0.2)
            body = wait_http(base + 80, 10, host="webapp.local")
        assert "instance: webapp<" in body, container.output()
        _stopped_cleanly(container, [base, base + 80])
