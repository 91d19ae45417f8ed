"""``procmgmt image`` images under a real dockerd: ``docker load`` of the tar, then
``docker run --network host``; the webapps answer on 127.0.0.1, ``docker stop``
ends PID 1 with status 0, and nothing is left (container, image, open port).

The dockerd is the docker backend tests' own (a catalogue dockerd deployed with
sysvinit, undeployed afterwards)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from procmgmt.cli.main import main
from tests.backends import test_docker
from tests.backends.test_docker import Dockerd
from tests.e2e.util import REPO, free_port_block, port_closed, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.root]

#: The module-scoped dockerd fixture of the docker backend tests.
docker_daemon = test_docker.docker_daemon

WEBAPPS = REPO / "examples" / "webapps" / "processes.py"


@pytest.mark.parametrize("manager", [
    pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan")),
    "sysvinit",
    "supervisord",
])
def test_docker_load_and_run_with_host_network(docker_daemon: Dockerd, tmp_path: Path,
                                               manager: str) -> None:
    base = free_port_block(2)
    name = f"procmgmt-image-test/{os.getpid()}:{manager}"
    tar = tmp_path / "image.tar"
    assert main(["image", "-P", manager, str(WEBAPPS), "-o", str(tar), "--name", name,
                 "--extra-params", json.dumps({"port_base": base})]) == 0
    loaded = docker_daemon.docker("load", "-i", str(tar))
    assert loaded.returncode == 0 and f"Loaded image: {name}" in loaded.stdout, loaded.stderr
    container = f"pmimg-{os.getpid()}-{manager}"
    try:
        run = docker_daemon.docker("run", "-d", "--name", container, "--network", "host", name)
        assert run.returncode == 0, run.stderr
        for port, instance in ((base, "webapp"), (base + 1, "webapp1")):
            body = wait_http(port, 60)
            assert f"instance: {instance}<" in body, docker_daemon.docker("logs", container)
        stop = docker_daemon.docker("stop", "--time", "60", container)
        assert stop.returncode == 0, stop.stderr
        state = json.loads(docker_daemon.docker("inspect", container).stdout)[0]["State"]
        logs = docker_daemon.docker("logs", container)
        assert state["ExitCode"] == 0, logs.stdout + logs.stderr
        assert port_closed(base) and port_closed(base + 1)
    finally:
        docker_daemon.docker("rm", "--force", container)
        docker_daemon.docker("rmi", "--force", name)
    assert name not in docker_daemon.docker("images", "--format",
                                            "{{.Repository}}:{{.Tag}}").stdout
