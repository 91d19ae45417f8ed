"""The coordinator's side of reaching hosts: a client of the pyinfra worker.

:class:`Hosts` starts :mod:`.worker` as a child process (its own gevent
loop, see there) and turns each request into one JSON line and its reply
back into Python results. Every call is per host and parallel across hosts;
an unreachable host or a failed command is a :class:`Result` with ``ok``
false and the reason, never an exception in the middle of a transition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from procmgmt.errors import DeployError
from procmgmt.network.infrastructure import SSH, Target


@dataclass(frozen=True)
class Result:
    """One host's outcome of one call."""

    ok: bool
    stdout: str = ""
    stderr: str = ""
    error: str | None = None

    def reason(self) -> str:
        """Why it failed, in one or a few lines."""
        return (self.error or self.stderr.strip() or self.stdout.strip()
                or "failed without a message")


def _host_json(target: Target) -> dict[str, Any]:
    if isinstance(target.reach, SSH):
        ssh = target.reach
        return {"name": target.name, "kind": "ssh", "hostname": ssh.host, "port": ssh.port,
                "user": ssh.user, "key": ssh.key and os.path.expanduser(ssh.key),
                "known_hosts": ssh.known_hosts and os.path.expanduser(ssh.known_hosts)}
    return {"name": target.name, "kind": "local"}


class Hosts:
    """Connections to a set of targets, through one pyinfra worker process."""

    def __init__(self, targets: Mapping[str, Target], timeout: float | None = 300,
                 sessions: Mapping[str, str] | None = None) -> None:
        self.targets = dict(targets)
        self.timeout = timeout
        #: Per host, the command of the session (:meth:`call`) to start as soon as
        #: the host is connected: it starts up meanwhile, not when first asked.
        self.sessions = dict(sessions or {})
        self._child: subprocess.Popen[str] | None = None
        self.unreachable: dict[str, str] = {}

    def __enter__(self) -> Hosts:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "procmgmt.network.worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            start_new_session=True)
        reply = self._request({"op": "connect",
                               "hosts": [{**_host_json(t), "session": self.sessions.get(n)}
                                         for n, t in self.targets.items()]})
        self.unreachable = dict(reply.get("errors", {}))
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        try:
            assert child.stdin is not None
            child.stdin.write(json.dumps({"op": "quit"}) + "\n")
            child.stdin.close()
            child.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            child.kill()
            child.wait()

    def _request(self, request: dict[str, Any]) -> dict[str, Any]:
        child = self._child
        assert child is not None and child.stdin is not None and child.stdout is not None
        interrupted = False
        try:
            child.stdin.write(json.dumps(request) + "\n")
            child.stdin.flush()
            try:
                line = child.stdout.readline()
            except KeyboardInterrupt:
                # The hosts are in the middle of this request: let it finish (so each
                # host ends a step it began, and the next request gets its own reply),
                # then give the interrupt to the caller. A second one stops waiting.
                interrupted = True
                line = child.stdout.readline()
        except OSError as exc:
            raise DeployError(f"the pyinfra worker stopped: {exc}") from None
        if interrupted:
            raise KeyboardInterrupt
        if not line:
            raise DeployError("the pyinfra worker stopped (is pyinfra installed? "
                              f"{sys.executable} -m pip install pyinfra)")
        reply: dict[str, Any] = json.loads(line)
        if "fatal" in reply:
            raise DeployError(f"the pyinfra worker failed: {reply['fatal']}")
        return reply

    def run(self, commands: Mapping[str, str], stdin: Mapping[str, str] | None = None,
            timeout: float | None = None) -> dict[str, Result]:
        """Run one shell command on each named host, in parallel."""
        calls = [{"host": h, "command": c, "stdin": (stdin or {}).get(h)}
                 for h, c in commands.items() if h not in self.unreachable]
        results = {h: Result(False, error=f"unreachable: {self.unreachable[h]}")
                   for h in commands if h in self.unreachable}
        if calls:
            reply = self._request({"op": "run", "calls": calls,
                                   "timeout": timeout or self.timeout})
            for host, r in reply["results"].items():
                results[host] = Result(r["ok"], r.get("stdout", ""), r.get("stderr", ""),
                                       r.get("error"))
        return results

    def call(self, commands: Mapping[str, str], lines: Mapping[str, str],
             timeout: float | None = None) -> dict[str, Result]:
        """Send one line to each named host's long-lived ``command`` (started on first
        use, kept for the next call: one process per host for the whole run) and
        read the line it answers, in parallel. A command that ended without
        answering is a failed :class:`Result` with its stderr."""
        calls = [{"host": h, "command": commands[h], "line": line}
                 for h, line in lines.items() if h not in self.unreachable]
        results = {h: Result(False, error=f"unreachable: {self.unreachable[h]}")
                   for h in lines if h in self.unreachable}
        if calls:
            reply = self._request({"op": "call", "calls": calls,
                                   "timeout": timeout or self.timeout})
            for host, r in reply["results"].items():
                results[host] = Result(r["ok"], r.get("stdout", ""), r.get("stderr", ""),
                                       r.get("error"))
        return results

    def put(self, files: Mapping[str, tuple[str, str]]) -> dict[str, Result]:
        """Copy a local file to a remote path on each named host, in parallel."""
        calls = [{"host": h, "local": local, "remote": remote}
                 for h, (local, remote) in files.items() if h not in self.unreachable]
        results = {h: Result(False, error=f"unreachable: {self.unreachable[h]}")
                   for h in files if h in self.unreachable}
        if calls:
            reply = self._request({"op": "put", "calls": calls})
            for host, r in reply["results"].items():
                results[host] = Result(r["ok"], error=r.get("error"))
        return results
