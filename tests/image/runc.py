"""Run a ``procmgmt image`` tar for real: ``umoci unpack`` it into an OCI bundle and
``runc run`` the bundle, on the host's network, then stop and delete the container.

The bundle's config.json is umoci's, changed only where a container engine would
differ: no network namespace (``docker run --network host``), no terminal, and,
for root, Docker's default capabilities (umoci's default set lacks CAP_CHOWN,
CAP_SETUID and the rest a privileged image needs to switch users); the docker
backend's runc containers follow the same two rules
(:mod:`procmgmt.backends.docker.oci`). Rootless runs
unpack with ``--rootless`` and run runc as an unprivileged user (``setpriv``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from procmgmt.backends.docker.oci import DOCKER_CAPS, host_network
from tests._lanes import require_tool


class Container:
    """One container of an image tar: :meth:`start`, :meth:`pids`, :meth:`stop`."""

    def __init__(self, image: Path, tag: str, work: Path, cid: str,
                 as_user: str | None = None) -> None:
        self.image, self.tag, self.work, self.cid = image, tag, work, cid
        self.as_user = as_user
        self.bundle = work / "bundle"
        self.state = work / "runc"
        self.log = work / "container.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _argv(self, argv: Sequence[str]) -> list[str]:
        if self.as_user is None:
            return list(argv)
        import pwd

        pw = pwd.getpwnam(self.as_user)
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
                "env", f"HOME={self.work}", f"XDG_RUNTIME_DIR={self.work}", *argv]

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._argv(argv), check=False, text=True, capture_output=True,
                              timeout=120)

    def unpack(self) -> None:
        """The image's layout dir, then umoci's bundle, with the config changed (module doc)."""
        umoci = require_tool("umoci")
        layout = self.work / "oci"
        layout.mkdir(parents=True)
        with tarfile.open(self.image) as tar:
            tar.extractall(layout, filter="tar")
        if self.as_user is not None:
            subprocess.run(["chown", "-R", self.as_user, str(self.work)], check=True)
        rootless = ["--rootless"] if self.as_user is not None else []
        result = self._run(umoci, "unpack", *rootless, "--image", f"{layout}:{self.tag}",
                           str(self.bundle))
        assert result.returncode == 0, f"umoci unpack failed: {result.stderr}"
        path = self.bundle / "config.json"
        config = json.loads(path.read_text())
        host_network(config)
        config["process"]["terminal"] = False
        if self.as_user is None:
            for key in ("bounding", "effective", "permitted"):
                config["process"]["capabilities"][key] = list(DOCKER_CAPS)
        path.write_text(json.dumps(config))

    def start(self) -> None:
        """``runc run`` in the foreground of a child process (its output to :attr:`log`)."""
        runc = require_tool("runc")
        self.unpack()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self._argv([runc, "--root", str(self.state), "run", "-b", str(self.bundle),
                            self.cid]), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        """What the container printed so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pids(self) -> list[int]:
        """Host pids of the container's processes (``runc ps``)."""
        result = self._run(require_tool("runc"), "--root", str(self.state), "ps",
                           "--format", "json", self.cid)
        return list(json.loads(result.stdout or "[]")) if result.returncode == 0 else []

    def listed(self) -> list[str]:
        """Containers runc knows in this state dir."""
        result = self._run(require_tool("runc"), "--root", str(self.state), "list", "-q")
        return result.stdout.split()

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM to PID 1 (``runc kill``), wait for it to exit; its exit status (None
        when it had to be killed). The container is deleted either way."""
        runc = require_tool("runc")
        status = None
        if self.proc is not None and self.proc.poll() is None:
            self._run(runc, "--root", str(self.state), "kill", self.cid, "TERM")
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = self.proc.wait(timeout)
        elif self.proc is not None:
            status = self.proc.returncode
        if self.proc is not None and self.proc.poll() is None:
            self._run(runc, "--root", str(self.state), "kill", self.cid, "KILL")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            self.proc.wait(10)
        self._run(runc, "--root", str(self.state), "delete", "--force", self.cid)
        return status


@contextlib.contextmanager
def running(image: Path, tag: str, work: Path, cid: str,
            as_user: str | None = None) -> Iterator[Container]:
    """A started container, stopped and deleted when the block ends."""
    container = Container(image, tag, work, cid, as_user)
    try:
        container.start()
        yield container
    finally:
        container.stop()


def wait_exit(container: Container, timeout: float) -> None:
    """Wait until PID 1 has exited (an assertion error naming its output otherwise)."""
    deadline = time.monotonic() + timeout
    while container.proc is not None and container.proc.poll() is None:
        assert time.monotonic() < deadline, f"container still runs:\n{container.output()}"
        time.sleep(0.1)
