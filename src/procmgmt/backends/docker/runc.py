"""The docker backend's containers run by runc, without dockerd: as root, or rootless.

The same plan file (:mod:`.plan`) that gives ``docker create`` its options
gives runc a bundle (:mod:`.oci`): a directory with ``config.json`` and the
container's root, written from the same layout as the docker image
(:func:`.rootfs.materialize`). Everything lives under
``<runtime_dir>/procmgmt-runc``: runc's state (``runc --root``) in
``state/`` and one bundle per container, named like the docker container
(unique per deployment). A container is started with ``runc run -d`` (its
output appended to ``<log_dir>/<container>.log``, the file ``logs`` reads),
and carries the content hash of the process's files as an annotation: a
start whose container runs with that hash does nothing, any other
container of that name (another version, a leftover of an interrupted
switch, one whose process was killed) is deleted first.

Stopping sends the stop signal with ``runc kill``, then SIGKILL once the
stop timeout has passed, and ``runc delete`` removes the container and its
bundle. As root each container has a cgroup of its own, so SIGKILL reaches
everything it started (``kill --all``); rootless there is none (cgroup v1
delegates nothing to an ordinary user, and runc then runs the container
without), so SIGKILL reaches its first process only, and the daemon a
proxy watches is killed by its trusted pid file. runc restarts nothing:
restart policies other than ``no`` are refused by the pre-flight.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

from procmgmt import fsutil
from procmgmt.backends._activation import (
    CommandResult,
    Runner,
    pid_verdict,
    subprocess_runner,
    tail,
)
from procmgmt.backends.base import Activator, LogSource, ProcessStatus, Tool
from procmgmt.backends.docker import oci, plan, rootfs
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings

#: Debian's runc (under /usr/sbin, which an ordinary user's PATH may lack).
DEBIAN_RUNC = "/usr/sbin/runc"
#: Seconds a container may take from ``runc run -d`` to running.
START_TIMEOUT = 30.0
#: Seconds to wait for a container to end after SIGKILL.
KILL_TIMEOUT = 10.0
#: Seconds ``runc run -d`` may take (it returns once the container's process runs).
LAUNCH_TIMEOUT = 120.0

#: Starts ``runc run -d`` with its output (the container's, inherited) appended to
#: a log file; the single place a container is launched, so tests can record it.
Launcher = Callable[[Sequence[str], str], CommandResult]


def default_runc() -> str:
    """Debian's runc, else ``runc`` on PATH."""
    return DEBIAN_RUNC if os.access(DEBIAN_RUNC, os.X_OK) else "runc"


def launch(argv: Sequence[str], log: str) -> CommandResult:
    """Run ``argv`` with stdout and stderr appended to ``log`` (created 0640): runc
    passes them to the container's process, which keeps them after runc exits."""
    fd = fsutil.open_file(log, fsutil.LOG, os.O_WRONLY | os.O_APPEND)
    try:
        rc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                            umask=fsutil.SERVICE_UMASK, timeout=LAUNCH_TIMEOUT,
                            check=False).returncode
    except subprocess.TimeoutExpired:
        rc = 124
    finally:
        os.close(fd)
    return CommandResult(rc, "")


def last_lines(path: str, count: int = 10) -> list[str]:
    """The last non-empty lines of a file (none when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4000))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if ln.strip()][-count:]


class RuncActivator(Activator):
    """Drives containers through runc; safe to call from several threads (each
    container has its own bundle, and runc locks its own state)."""

    parallel_safe = True

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 launcher: Launcher | None = None, runc: str | None = None,
                 rootless: bool | None = None) -> None:
        super().__init__(settings)
        self.runc = runc or default_runc()
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        self._runner = runner or subprocess_runner
        self._launch = launcher or launch
        self.base = os.path.join(settings.runtime_dir, "procmgmt-runc")
        self.state_root = os.path.join(self.base, "state")

    # -- paths and runc commands --------------------------------------------------

    def bundle(self, name: str) -> str:
        """The bundle directory of container ``name``."""
        return os.path.join(self.base, name)

    def log_file(self, name: str) -> str:
        """Where container ``name``'s output goes."""
        return os.path.join(self.settings.log_dir, f"{name}.log")

    def run(self, *args: str) -> CommandResult:
        """One runc command against our state directory."""
        return self._runner([self.runc, "--root", self.state_root, *args])

    def must(self, what: str, *args: str) -> CommandResult:
        """A runc command that must succeed, else a DeployError quoting its output."""
        result = self.run(*args)
        if result.returncode != 0:
            raise DeployError(f"{what} failed (runc {args[0]}, exit status "
                              f"{result.returncode}):\n{tail(result.output)}")
        return result

    def state(self, name: str) -> dict[str, Any] | None:
        """``runc state`` of ``name``; None when runc has no container of that name."""
        if not os.path.isdir(os.path.join(self.state_root, name)):
            return None
        result = self.run("state", name)
        if result.returncode != 0:
            if "does not exist" in result.output:
                # A state directory runc left half made (runc interrupted while it
                # created the container): removed, or the next run would be refused.
                self.run("delete", "--force", name)
                return None
            raise DeployError(f"runc state {name} failed:\n{tail(result.output, 5)}")
        try:  # runc's warnings (on stderr, in the same output) may surround the JSON
            found, _ = json.JSONDecoder().raw_decode(result.output[result.output.index("{"):])
        except ValueError:
            raise DeployError(f"runc state {name}: unreadable output:\n"
                              f"{tail(result.output, 5)}") from None
        return found if isinstance(found, dict) else None

    def remove(self, name: str) -> None:
        """``runc delete --force`` (which kills what still runs) and the bundle."""
        if os.path.isdir(os.path.join(self.state_root, name)):
            self.must(f"deleting container {name}", "delete", "--force", name)
        shutil.rmtree(self.bundle(name), ignore_errors=True)

    # -- the bundle -----------------------------------------------------------------

    def write_bundle(self, proc: DeployedProcess, doc: dict[str, Any]) -> str:
        """A fresh bundle for ``proc``: its root from the layout and its config."""
        name = plan.container(proc)
        path = self.bundle(name)
        shutil.rmtree(path, ignore_errors=True)
        fsutil.ensure_dir(path, fsutil.PRIVATE_DIR if self.rootless else fsutil.DIR)
        rootfs.materialize(rootfs.layout(), os.path.join(path, "rootfs"))
        block = doc["runc"]
        args = [str(w) for w in block["args"]]
        extra: list[dict[str, Any]] = []
        proxy = plan.proxy_path(proc, doc)
        if proxy:
            extra.append(oci.bind(proxy, proxy, readonly=True))
            args = [proxy]
        config = oci.config(
            block, rootfs="rootfs", ident=oci.identity(doc.get("user"), self.rootless),
            hostname=name, args=args, extra_mounts=extra,
            cgroups_path=None if self.rootless else f"/{name}",
            annotations={oci.HASH_ANNOTATION: proc.hash})
        fsutil.write_atomic(os.path.join(path, "config.json"), json.dumps(config, indent=1),
                            fsutil.FILE)
        return path

    # -- Activator ------------------------------------------------------------------

    def required_tools(self, gen: Generation) -> list[Tool]:
        """runc."""
        return [Tool("runc", self.runc, "install runc (apt-get install runc), or deploy "
                     "as root with PROCMGMT_DOCKER_RUNTIME=docker")]

    def preflight(self, gen: Generation) -> list[str]:
        """runc, restart policies runc cannot keep, users a rootless run cannot be."""
        if not gen.processes:
            return []
        problems = super().preflight(gen)
        for proc in gen.processes:
            if proc.restart not in (None, "no"):
                problems.append(
                    f"{proc.name}: restart={proc.restart!r} cannot be kept under runc "
                    "(no daemon watches a container): use restart='no', deploy as root "
                    "with PROCMGMT_DOCKER_RUNTIME=docker, or use runit, s6 or supervisord")
            if self.rootless:  # as root the account may be created by this switch
                try:
                    oci.identity(plan.load(proc).get("user"), rootless=True)
                except DeployError as exc:
                    problems.append(f"{proc.name}: {exc}")
        return problems

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """runc's state directory and the state directories the containers mount (a
        bind mount of a missing path fails)."""
        if not new.processes:
            return
        fsutil.ensure_dir(self.state_root, fsutil.PRIVATE_DIR)
        fsutil.ensure_dir(self.settings.log_dir)
        for proc in new.processes:
            for mount in plan.load(proc)["runc"]["mounts"]:
                if "ro" not in mount["options"]:
                    fsutil.ensure_dir(str(mount["source"]))

    def start(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """Write the bundle and ``runc run -d`` it (replacing a container of another
        version); the probe is True once it runs and raises when it exits first."""
        name = plan.container(proc)
        found = self.state(name)
        if found is not None:
            hashes = found.get("annotations") or {}
            if found.get("status") == "running" and hashes.get(oci.HASH_ANNOTATION) == proc.hash:
                return None
            self.remove(name)
        bundle = self.write_bundle(proc, plan.load(proc))
        log = self.log_file(name)
        result = self._launch([self.runc, "--root", self.state_root, "run", "--detach",
                               "--pid-file", os.path.join(bundle, "pid"), "--bundle", bundle,
                               name], log)
        if result.returncode != 0:
            lines = "\n    ".join(last_lines(log, 5))
            with contextlib.suppress(DeployError):
                self.remove(name)
            raise DeployError(f"runc run of container {name} failed (exit status "
                              f"{result.returncode}); last lines of {log}:\n    {lines}")
        deadline = time.monotonic() + START_TIMEOUT

        def probe() -> bool:
            state = self.state(name) or {}
            if state.get("status") == "running":
                return True
            if state.get("status") in (None, "stopped") or time.monotonic() > deadline:
                why = self.diagnose(gen, proc)
                with contextlib.suppress(DeployError):
                    self.remove(name)  # its output stays in the log file
                raise DeployError(f"container {name} of {proc.name} is not running "
                                  f"({state.get('status', 'gone')})\n{why}")
            return False

        return probe

    def stop(self, gen: Generation, proc: DeployedProcess) -> Callable[[], bool] | None:
        """The stop signal, SIGKILL after the stop timeout, then ``runc delete``; the
        probe is True once the container is gone."""
        name = plan.container(proc)
        found = self.state(name)
        if found is None or found.get("status") != "running":
            self.remove(name)
            return None
        block = plan.load(proc)["runc"]
        self.run("kill", name, str(block.get("stop_signal", "TERM")))
        timeout = float(proc.extra.get("stop_timeout") or block.get("stop_timeout") or 10)
        kill_at = time.monotonic() + timeout
        give_up = kill_at + KILL_TIMEOUT
        killed = False

        def probe() -> bool:
            nonlocal killed
            if (self.state(name) or {}).get("status") != "running":
                self.remove(name)
                return True
            now = time.monotonic()
            if now > kill_at and not killed:
                killed = True
                self.kill(proc, name)
            if now > give_up:
                raise DeployError(f"container {name} of {proc.name} still runs "
                                  f"{KILL_TIMEOUT:g}s after SIGKILL")
            return False

        return probe

    def kill(self, proc: DeployedProcess, name: str) -> None:
        """SIGKILL for what the stop signal did not end: the whole cgroup as root; the
        container's process and the daemon its proxy watches rootless."""
        self.run("kill", *([] if self.rootless else ["--all"]), name, "KILL")
        if self.rootless and proc.extra.get("wraps_daemon"):
            verdict = pid_verdict(proc, self.settings)
            if verdict.trusted and verdict.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(verdict.pid, signal.SIGKILL)

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """Running and the host pid of the container's process, from ``runc state``."""
        try:
            found = self.state(plan.container(proc))
        except DeployError as exc:
            return ProcessStatus(proc.name, False, detail=str(exc).splitlines()[0])
        if found is None:
            return ProcessStatus(proc.name, False, detail="no container")
        detail = str(found.get("status", ""))
        if (found.get("annotations") or {}).get(oci.HASH_ANNOTATION) != proc.hash:
            detail += ", container of another version of the process"
        running = found.get("status") == "running"
        pid = found.get("pid")
        return ProcessStatus(proc.name, running,
                             int(pid) if running and isinstance(pid, int) and pid > 0 else None,
                             detail)

    def diagnose(self, gen: Generation, proc: DeployedProcess) -> str:
        """The last lines of the container's log file."""
        log = self.log_file(plan.container(proc))
        lines = last_lines(log)
        return f"last lines of {log}:\n    " + "\n    ".join(lines) if lines else ""

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """The container's log file."""
        return LogSource(files=(self.log_file(plan.container(proc)),))

    def finish(self, new: Generation, old: Generation | None) -> None:
        """Containers of ``old`` that ``new`` lacks and that no longer run (a process
        that died before a failed switch was undone: the undo stops only what runs)
        are deleted; after an undeploy, runc's state directory and the bundle
        directory too when no container of any deployment is left in them (another
        deployment may share the runtime directory: nothing that is not empty goes)."""
        keep = {plan.container(p) for p in new.processes}
        for proc in old.processes if old is not None else ():
            name = plan.container(proc)
            if name not in keep and (self.state(name) or {}).get("status") != "running":
                self.remove(name)
        if new.processes:
            return
        for path in (self.state_root, self.base):
            with contextlib.suppress(OSError):
                os.rmdir(path)
