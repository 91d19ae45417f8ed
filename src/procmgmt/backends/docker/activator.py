"""The docker activator: creates, starts, stops and removes one container per process.

Every command goes to the dockerd of ``PROCMGMT_DOCKER_SOCKET`` with an
explicit ``-H unix://SOCKET`` (never the client's default, which may be
a system-wide dockerd), through the client of ``PROCMGMT_DOCKER_CLIENT``.

A container is named after the process and the deployment
(:func:`.backend.container_name`) and labelled with the content hash of the
process's files: starting a process whose container already runs with
that hash does nothing; any other container of that name (another
version, a leftover of an interrupted switch) is removed first. The engine
decides what a switch restarts from the same hashes, so a switch touches
exactly the containers whose process changed. Stopping is ``docker stop``
(the stop signal, then SIGKILL after ``--stop-timeout``) and ``docker rm``:
a stopped process leaves no container behind. The image (:mod:`.rootfs`)
is imported once per layout and kept.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from procmgmt import fsutil
from procmgmt.backends._activation import CommandResult, Runner, subprocess_runner, tail
from procmgmt.backends.base import Activator, LogSource, ProcessStatus, Tool
from procmgmt.backends.docker import plan, rootfs
from procmgmt.backends.docker.settings import CLIENT, SOCKET
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: The client packaged with Debian's dockerd (same API version).
DEBIAN_CLIENT = "/usr/bin/docker"
#: Seconds a container may take from ``docker start`` to running.
START_TIMEOUT = 30.0


def default_client() -> str:
    """``PROCMGMT_DOCKER_CLIENT``, else Debian's client, else ``docker`` on PATH."""
    chosen = CLIENT.read()
    if chosen:
        return str(chosen)
    return DEBIAN_CLIENT if os.access(DEBIAN_CLIENT, os.X_OK) else "docker"


def user_options(name: str) -> list[str]:
    """``--user UID:GID`` and a ``--group-add`` per supplementary group of ``name``,
    looked up on the host now (the account may have been created by this switch):
    dockerd resolves a user *name* in the image's /etc/passwd, not the mounted one."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise DeployError(f"cannot run a container as {name!r}: no such user") from None
    opts = ["--user", f"{entry.pw_uid}:{entry.pw_gid}"]
    for gid in sorted(set(os.getgrouplist(name, entry.pw_gid)) - {entry.pw_gid}):
        opts += ["--group-add", str(gid)]
    return opts


class DockerActivator(Activator):
    """Drives containers through the docker client; safe to call from several threads."""

    parallel_safe = True

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 client: str | None = None, socket: str | None = None) -> None:
        super().__init__(settings)
        self.client = client or default_client()
        self.socket = socket or str(SOCKET.read())
        self._runner = runner or subprocess_runner

    # -- docker commands --------------------------------------------------------

    def argv(self, *args: str) -> list[str]:
        """A docker command against our dockerd."""
        return [self.client, "-H", f"unix://{self.socket}", *args]

    def docker(self, *args: str) -> CommandResult:
        """Run one docker command; its status and output."""
        return self._runner(self.argv(*args))

    def must(self, what: str, *args: str) -> CommandResult:
        """Run a docker command that must succeed, else a DeployError quoting its output."""
        result = self.docker(*args)
        if result.returncode != 0:
            raise DeployError(f"{what} failed (docker {args[0]}, exit status "
                              f"{result.returncode}):\n{tail(result.output)}")
        return result

    def inspect(self, container: str) -> dict[str, Any] | None:
        """``docker inspect`` of ``container``, None when dockerd has none of that
        name; a DeployError when dockerd cannot be asked (a stop must not take an
        unreachable dockerd for "nothing to stop")."""
        result = self.docker("container", "inspect", container)
        if result.returncode != 0:
            if "no such" in result.output.lower():
                return None
            raise DeployError(f"cannot inspect container {container} at dockerd "
                              f"{self.socket}:\n{tail(result.output, 5)}")
        try:
            found = json.loads(result.output)
        except json.JSONDecodeError:
            raise DeployError(f"docker inspect {container}: unreadable output:\n"
                              f"{tail(result.output, 5)}") from None
        return found[0] if isinstance(found, list) and found else None

    # -- plan of a process --------------------------------------------------------

    @staticmethod
    def create_argv(proc: DeployedProcess, doc: dict[str, Any]) -> list[str]:
        """``create`` plus the plan's options, the hash label, the proxy (mounted
        read-only from the store entry and run as the command), image and command."""
        args = ["create", *doc["create"], "--label", f"{plan.HASH_LABEL}={proc.hash}"]
        if doc.get("user"):
            args += user_options(str(doc["user"]))
        command = [str(w) for w in doc.get("command") or []]
        proxy = plan.proxy_path(proc, doc)
        if proxy:
            args += ["--mount", plan.mount_option({"source": proxy, "target": proxy,
                                                   "readonly": True})]
            command = [proxy]
        return [*args, str(doc["image"]), *command]

    # -- Activator ----------------------------------------------------------------

    def required_tools(self, gen: Generation) -> list[Tool]:
        """The docker client."""
        return [Tool("docker", self.client, "install docker.io (apt-get install "
                     "--no-install-recommends docker.io) or set PROCMGMT_DOCKER_CLIENT")]

    def preflight(self, gen: Generation) -> list[str]:
        """Root, the client, and a dockerd answering on the socket."""
        if not gen.processes:
            return []
        if os.geteuid() != 0:
            return ["the docker runtime deploys as root only (a rootless dockerd is not "
                    "packaged here): leave PROCMGMT_DOCKER_RUNTIME unset or set it to runc "
                    "to run the containers rootless with runc"]
        problems = super().preflight(gen)
        if problems:
            return problems
        if not os.path.exists(self.socket):
            return [f"no dockerd socket at {self.socket} (PROCMGMT_DOCKER_SOCKET): start "
                    "dockerd, e.g. the catalogue's procmgmt.services.dockerd"]
        result = self.docker("version", "--format", "{{.Server.Version}}")
        if result.returncode != 0:
            return [f"dockerd at {self.socket} does not answer: {tail(result.output, 3)}"]
        return []

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Import the image when dockerd lacks it; create the state directories the
        containers mount (a bind mount of a missing path fails)."""
        if not new.processes:
            return
        self.ensure_image(rootfs.layout())
        for proc in new.processes:
            for word in plan.load(proc)["create"]:
                if word.startswith("type=bind,") and ",readonly" not in word:
                    source = word.split(",source=", 1)[1].split(",target=", 1)[0]
                    fsutil.ensure_dir(source)

    def ensure_image(self, layout: rootfs.Layout) -> None:
        """``docker import`` the layout's tar under its tag unless an image with that
        tag and label is there."""
        digest = layout.digest()
        have = self.docker("image", "inspect", "--format",
                           "{{index .Config.Labels \"" + rootfs.LABEL + "\"}}", layout.tag)
        if have.returncode == 0 and have.output.strip() == digest:
            return
        result = subprocess.run(
            self.argv("import", "--change", f"LABEL {rootfs.LABEL}={digest}", "-", layout.tag),
            input=rootfs.tar_bytes(layout), capture_output=True, check=False, timeout=300)
        if result.returncode != 0:
            raise DeployError(f"docker import of {layout.tag} failed:\n"
                              f"{tail(result.stderr.decode(errors='replace'))}")

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Create and start the container (replacing one of another version); the
        probe is True once it runs and raises when it exits first."""
        name = plan.container(proc)
        found = self.inspect(name)
        if found is not None:
            labels = (found.get("Config") or {}).get("Labels") or {}
            if labels.get(plan.HASH_LABEL) == proc.hash and found["State"].get("Running"):
                return None
            self.must(f"removing the old container {name}", "rm", "--force", name)
        self.must(f"creating container {name}", *self.create_argv(proc, plan.load(proc)))
        self.must(f"starting container {name}", "start", name)
        deadline = time.monotonic() + START_TIMEOUT

        def probe() -> bool:
            state = (self.inspect(name) or {}).get("State") or {}
            # A container that exits at once is "exited" before it was ever seen running.
            if state.get("Running"):
                return True
            if state.get("Status") in ("exited", "dead") or time.monotonic() > deadline:
                raise DeployError(f"container {name} of {proc.name} is not running "
                                  f"({state.get('Status', 'gone')}, exit code "
                                  f"{state.get('ExitCode')})\n{self.diagnose(gen, proc)}")
            return False

        return probe

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``docker stop`` (its stop timeout applies) and ``docker rm``."""
        name = plan.container(proc)
        if self.inspect(name) is None:
            return
        timeout = int(proc.extra.get("stop_timeout") or 0)
        stop_args = ["stop", *(["--time", str(timeout)] if timeout else []), name]
        self.must(f"stopping container {name}", *stop_args)
        self.must(f"removing container {name}", "rm", "--force", name)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """Running and the host pid of the container's process, from ``docker inspect``."""
        try:
            found = self.inspect(plan.container(proc))
        except DeployError as exc:
            return ProcessStatus(proc.name, False, detail=str(exc).splitlines()[0])
        if found is None:
            return ProcessStatus(proc.name, False, detail="no container")
        state = found.get("State") or {}
        labels = (found.get("Config") or {}).get("Labels") or {}
        detail = str(state.get("Status", ""))
        if state.get("Restarting"):
            detail = (f"restarting: it exits right after starting (exit code "
                      f"{state.get('ExitCode')})")
        if labels.get(plan.HASH_LABEL) != proc.hash:
            detail += ", container of another version of the process"
        pid = state.get("Pid")
        running = bool(state.get("Running")) and not state.get("Restarting")
        return ProcessStatus(proc.name, running,
                             int(pid) if running and isinstance(pid, int) and pid > 0 else None,
                             detail)

    def diagnose(self, gen: Generation, proc: DeployedProcess) -> str:
        """The last lines of the container's output (``docker logs``)."""
        result = self.docker("logs", "--tail", "10", plan.container(proc))
        text = result.output.strip()
        return f"last lines of docker logs {plan.container(proc)}:\n    " + \
            "\n    ".join(text.splitlines()) if text else ""

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """dockerd keeps the output (``docker logs``), not a file procmgmt reads."""
        return LogSource()

    def containers(self, deployment: str) -> Sequence[str]:
        """Names of every container (running or not) labelled with ``deployment``."""
        result = self.docker("ps", "--all", "--format", "{{.Names}}", "--filter",
                             f"label={plan.DEPLOYMENT_LABEL}={deployment}")
        return sorted(result.output.split()) if result.returncode == 0 else []
