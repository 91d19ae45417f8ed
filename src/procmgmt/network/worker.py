"""The pyinfra worker: reaches the hosts, in a process of its own.

pyinfra runs on gevent (its connections are greenlets and it patches
blocking calls), which must not leak into the coordinator's threads,
signal handling and subprocesses. So the coordinator (:mod:`.reach`) starts
this module as a child process and talks to it in JSON lines on
stdin/stdout: one request, one reply. Within the worker every call of a
request runs on its host in parallel (one greenlet per host), through
pyinfra's own connectors (``@ssh`` for SSH targets, ``@local`` for the
coordinator's machine) and its low-level host API (``run_shell_command``,
``put_file``), so connection handling, host keys and SFTP are pyinfra's.

Requests: ``connect`` (hosts, each with the command of its session to start
at once, if any), ``run`` (a command per host, with stdin),
``put`` (a local file per host to a remote path), ``call`` (a line to a
host's long-lived command, one line back), ``quit``. Replies carry, per
host, ``ok`` and the output, or ``error``; the worker itself never raises a
traceback at the coordinator.

``call`` exists because pyinfra's ``run_shell_command`` writes all of a
command's stdin and closes it before reading any output: one request per
process. procmgmt's agent on a host costs a Python start and its imports
(a third of a CPU second) per process, paid by every host on the same
wave; a session (:class:`Session`) keeps one agent per host for the whole
transition instead, on a channel of pyinfra's own SSH connection (a
subprocess for ``@local``), and asks it one JSON line at a time.

The standard library is patched for gevent first (as pyinfra asks of API
scripts): without it paramiko's blocking socket reads would serve the
hosts' connections and outputs one after another.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from gevent import monkey  # type: ignore[import-untyped]

monkey.patch_all()  # before paramiko (through pyinfra) and subprocess are imported

import subprocess  # noqa: E402

import gevent  # noqa: E402
from pyinfra.api.config import Config  # noqa: E402
from pyinfra.api.exceptions import PyinfraError  # noqa: E402
from pyinfra.api.inventory import Inventory  # noqa: E402
from pyinfra.api.state import State  # noqa: E402


class Session:
    """One long-lived command on one host: lines in, lines out, stderr kept.

    Its stderr is read all along (a command blocked on a full stderr pipe would
    never answer); the last lines say why when it ends without answering."""

    def __init__(self, command: str, stdin: IO[bytes], stdout: IO[bytes],
                 stderr: IO[bytes], stop: Callable[[], None]) -> None:
        self.command = command
        self.stdin, self.stdout, self._stop = stdin, stdout, stop
        self.stderr: collections.deque[str] = collections.deque(maxlen=40)
        self.alive = True
        self._reader = gevent.spawn(self._drain, stderr)

    def _drain(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.stderr.append(line.decode(errors="replace") if isinstance(line, bytes)
                               else line)

    def ask(self, line: str, timeout: float | None) -> dict[str, Any]:
        """Send one line, read one line back (or why there is none)."""
        try:
            with gevent.Timeout(timeout):
                self.stdin.write(line.encode())
                self.stdin.flush()
                reply = self.stdout.readline()
        except gevent.Timeout:
            self.close()
            return {"ok": False, "error": f"no answer within {timeout:g} s"}
        except OSError as exc:
            reply = b""
            self.stderr.append(f"{exc}\n")
        if not reply:  # it ended: let its stderr finish so the reason is complete
            self.alive = False
            self._reader.join(timeout=5)
            return {"ok": False, "stdout": "", "stderr": "".join(self.stderr)}
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
        return {"ok": True, "stdout": text, "stderr": ""}

    def close(self) -> None:
        """End the command: its stdin closes (it exits when idle), then it is stopped."""
        self.alive = False
        with contextlib.suppress(OSError):
            self.stdin.close()
        self._stop()


def _open_session(host: Any, command: str) -> Session:
    """``command`` on ``host``: a channel of pyinfra's SSH connection, or a local
    shell for ``@local``."""
    client = getattr(host.connector, "client", None)
    if client is not None:  # pyinfra's paramiko SSHClient
        stdin, stdout, stderr = client.exec_command(command)
        channel = stdout.channel

        def stop() -> None:
            gevent.spawn_later(10, channel.close)  # gone by then or cut off

        return Session(command, stdin, stdout, stderr, stop)
    proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    def stop_local() -> None:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    return Session(command, proc.stdin, proc.stdout, proc.stderr, stop_local)


class Worker:
    """The inventory of one coordinator run and its connected hosts."""

    def __init__(self) -> None:
        self.state: State | None = None
        self.names: dict[str, str] = {}  # target name -> inventory host name
        self.sessions: dict[str, Session] = {}

    def connect(self, hosts: list[dict[str, Any]]) -> dict[str, Any]:
        entries: list[Any] = []
        for h in hosts:
            if h["kind"] == "local":
                inventory_name = "@local"
                data: dict[str, Any] = {}
            else:
                inventory_name = f"@ssh/{h['name']}"
                data = {"ssh_hostname": h["hostname"], "ssh_port": h["port"],
                        "ssh_allow_agent": False, "ssh_look_for_keys": False,
                        "ssh_connect_retries": 0}
                for key, field in (("user", "ssh_user"), ("key", "ssh_key"),
                                   ("known_hosts", "ssh_known_hosts_file")):
                    if h.get(key):
                        data[field] = h[key]
                data["ssh_strict_host_key_checking"] = "accept-new"
            self.names[h["name"]] = inventory_name
            entries.append((inventory_name, data))
        inventory = Inventory((entries, {}))  # type: ignore[no-untyped-call]
        config = Config(CONNECT_TIMEOUT=h_timeout(hosts))  # type: ignore[no-untyped-call]
        self.state = State(inventory, config)
        errors: dict[str, str] = {}

        def one(h: dict[str, Any]) -> None:
            target = h["name"]
            host = self._host(target)
            try:
                host.connect(show_errors=False, raise_exceptions=True)
                if h.get("session"):  # started now: it starts up while the others connect
                    self.sessions[target] = _open_session(host, h["session"])
            except (PyinfraError, OSError, EOFError) as exc:
                errors[target] = str(exc) or type(exc).__name__
        gevent.joinall([gevent.spawn(one, h) for h in hosts])
        return {"errors": errors}

    def _host(self, target: str) -> Any:
        assert self.state is not None
        return self.state.inventory.get_host(self.names[target])

    def run(self, calls: list[dict[str, Any]], timeout: float | None) -> dict[str, Any]:
        results: dict[str, Any] = {}

        def one(call: dict[str, Any]) -> None:
            target = call["host"]
            try:
                ok, output = self._host(target).run_shell_command(
                    call["command"], _stdin=call.get("stdin"), _timeout=timeout)
                results[target] = {"ok": bool(ok), "stdout": output.stdout,
                                   "stderr": output.stderr}
            except (PyinfraError, OSError, EOFError, gevent.Timeout) as exc:
                results[target] = {"ok": False, "error": str(exc) or type(exc).__name__}
        gevent.joinall([gevent.spawn(one, c) for c in calls])
        return {"results": results}

    def put(self, calls: list[dict[str, Any]]) -> dict[str, Any]:
        results: dict[str, Any] = {}

        def one(call: dict[str, Any]) -> None:
            target = call["host"]
            try:
                ok = self._host(target).put_file(call["local"], call["remote"])
                results[target] = {"ok": bool(ok)}
            except (PyinfraError, OSError, EOFError) as exc:
                results[target] = {"ok": False, "error": str(exc) or type(exc).__name__}
        gevent.joinall([gevent.spawn(one, c) for c in calls])
        return {"results": results}


    def call(self, calls: list[dict[str, Any]], timeout: float | None) -> dict[str, Any]:
        """Each call's ``line`` to its host's session of ``command`` (started when
        there is none yet, or it ended); the line it answers."""
        results: dict[str, Any] = {}

        def one(call: dict[str, Any]) -> None:
            target = call["host"]
            session = self.sessions.get(target)
            try:
                if session is None or not session.alive or session.command != call["command"]:
                    if session is not None:
                        session.close()
                    session = self.sessions[target] = _open_session(self._host(target),
                                                                    call["command"])
                results[target] = session.ask(call["line"], timeout)
            except (PyinfraError, OSError, EOFError) as exc:
                results[target] = {"ok": False, "error": str(exc) or type(exc).__name__}
        gevent.joinall([gevent.spawn(one, c) for c in calls])
        return {"results": results}

    def close(self) -> None:
        """End every session (each finishes what it is doing first)."""
        gevent.joinall([gevent.spawn(s.close) for s in self.sessions.values()])
        self.sessions.clear()


def h_timeout(hosts: list[dict[str, Any]]) -> int:
    """The connect timeout: the largest any host asks for (default 10 s)."""
    return max([int(h.get("connect_timeout") or 10) for h in hosts] or [10])


def main() -> int:
    # Replies go to a private copy of stdout; anything pyinfra or a library prints
    # lands on stderr instead of corrupting the JSON lines.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker()
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        try:
            if op == "connect":
                reply = worker.connect(request["hosts"])
            elif op == "run":
                reply = worker.run(request["calls"], request.get("timeout"))
            elif op == "put":
                reply = worker.put(request["calls"])
            elif op == "call":
                reply = worker.call(request["calls"], request.get("timeout"))
            elif op == "quit":
                break
            else:
                reply = {"fatal": f"unknown request {op!r}"}
        except Exception as exc:  # reported to the coordinator, not raised
            reply = {"fatal": f"{type(exc).__name__}: {exc}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
    worker.close()  # quit, or the coordinator is gone (end of its requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
