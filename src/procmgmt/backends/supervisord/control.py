"""Talking to a running supervisord: XML-RPC over its unix socket.

XML-RPC rather than ``supervisorctl``: a ``supervisorctl`` call costs about
0.1 s of interpreter start-up, per request. Every call opens its own
connection, so callers may talk from several threads. Polling is shaped by
how supervisord's single loop works: a request wakes the loop (SIGCHLD alone
does not: up to 1 s in ``poll``), waiting requests are answered only once per
iteration, and serializing the whole process table is not free with 1000
programs (see :class:`Snapshot` and :func:`wait_stopped`).
"""

from __future__ import annotations

import threading
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from typing import Any

from procmgmt.errors import DeployError

#: Linux's sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
UNIX_PATH_MAX = 107

#: supervisor.xmlrpc.Faults codes used here.
FAULT_BAD_NAME = 10
FAULT_NOT_RUNNING = 70
FAULT_ALREADY_STARTED = 60
FAULT_ALREADY_ADDED = 90

FAILED_STATES = ("BACKOFF", "FATAL", "EXITED")
#: States in which a program still has (or is about to have) a process.
ACTIVE_STATES = ("STARTING", "RUNNING", "BACKOFF", "STOPPING")


def connect(socket_path: str, timeout: float | None = None) -> Any:
    """An XML-RPC proxy over the unix socket (supervisor's own transport)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{socket_path}")
    if timeout is not None:
        # supervisor's unix-socket connection ignores every timeout setting (it
        # makes a blocking socket in connect()): set it on the socket itself, or a
        # supervisord that accepts but never replies blocks us forever.
        make = transport._get_connection

        def get_connection() -> Any:
            conn = make()
            connect = conn.connect

            def connect_with_timeout() -> None:
                connect()
                conn.sock.settimeout(timeout)

            conn.connect = connect_with_timeout
            return conn

        transport._get_connection = get_connection
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def answers(server: Any) -> bool:
    """True when the supervisord behind ``server`` answers and runs."""
    try:
        state = server.supervisor.getState()
    except (OSError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
        return False
    return bool(state.get("statename") in ("RUNNING", "RESTARTING"))


def fetch_table(server: Any) -> list[dict[str, Any]]:
    """Every program's info, as of *after* supervisord reaped what exited.

    SIGCHLD does not wake supervisord's loop (up to 1 s in ``poll``), and a
    request is answered before that iteration's reaping: alone, it could
    report a program that crashed a moment ago (a zombie) as STARTING and let
    a crash slip through the start grace. The ``getState`` first wakes the
    loop, which reaps; the table is answered in a later iteration."""
    server.supervisor.getState()
    return list(server.supervisor.getAllProcessInfo())


def log_tail(server: Any, name: str) -> list[str]:
    """The last (up to ten) non-blank lines supervisord captured from program ``name``."""
    text, _, _ = server.supervisor.tailProcessStdoutLog(name, 0, 2000)
    return [ln for ln in str(text).splitlines() if ln.strip()][-10:]


def wait_stopped(server: Any, names: Sequence[str] | None, timeout: float) -> None:
    """Poll until the named groups (None: all) have no live process."""
    deadline = time.monotonic() + timeout
    while True:
        if names is None:
            infos = server.supervisor.getAllProcessInfo()
        else:
            # One program's info, not all N: with 1000 programs, stops running in
            # parallel that each poll the whole table keep supervisord busy
            # serializing it (undeploy grew quadratically).
            infos = []
            for name in names:
                try:
                    infos.append(server.supervisor.getProcessInfo(f"{name}:{name}"))
                except xmlrpc.client.Fault as fault:
                    if fault.faultCode != FAULT_BAD_NAME:
                        raise
        busy = [i["group"] for i in infos
                if i.get("statename") in ACTIVE_STATES
                and (names is None or i.get("group") in names)]
        if not busy:
            return
        if time.monotonic() > deadline:
            raise DeployError(f"supervisord did not stop {', '.join(sorted(busy))} "
                              f"within {timeout:g} s")
        time.sleep(0.02)


class Snapshot:
    """One ``getAllProcessInfo`` shared by every probe and status call.

    A probe per program that asks supervisord for its own program every 20 ms
    keeps supervisord's single loop busy answering (N requests per poll round,
    between its spawns). One table, refreshed at most every ``min_age`` seconds
    and never more often than twice the time the last fetch took (with 1000
    programs serializing the table is not free), costs one request per round
    whatever N is. Any request that changes states (add, start, stop) calls
    :meth:`invalidate`: a table fetched before it is never served afterwards.
    """

    def __init__(self, fetch: Callable[[], list[dict[str, Any]]], min_age: float = 0.02) -> None:
        self._fetch = fetch
        self.min_age = min_age
        self._lock = threading.Lock()
        self._infos: dict[str, dict[str, Any]] = {}
        #: Monotonic time at which the request behind ``_infos`` was sent.
        self._at = float("-inf")
        self._took = 0.0
        self._valid_after = float("-inf")

    def invalidate(self) -> None:
        """States changed: the next :meth:`get` fetches anew."""
        self._valid_after = time.monotonic()

    def get(self) -> tuple[dict[str, dict[str, Any]], float]:
        """(group name -> process info, monotonic time the table was requested)."""
        with self._lock:
            now = time.monotonic()
            if self._at <= self._valid_after or now - self._at >= max(self.min_age,
                                                                       2 * self._took):
                infos = self._fetch()
                self._took = time.monotonic() - now
                self._infos = {str(i["group"]): i for i in infos if i.get("name") == i.get("group")}
                self._at = now
            return self._infos, self._at
