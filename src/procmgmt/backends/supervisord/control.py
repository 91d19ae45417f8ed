"""Talking to a running supervisord: XML-RPC over its unix socket.

XML-RPC rather than ``supervisorctl``: a ``supervisorctl`` call costs about
0.1 s of interpreter start-up, per request. Every call opens its own
connection, so callers may talk from several threads. Polling is shaped by
how supervisord's single loop works: a request wakes the loop (SIGCHLD alone
does not: up to 1 s in ``poll``), waiting requests are answered only once per
iteration, and serializing the whole process table is not free with 1000
programs (see :class:`Snapshot` and :class:`Batcher`).
"""

from __future__ import annotations

import contextlib
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from concurrent.futures import Future
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


class Snapshot:
    """One ``getAllProcessInfo`` shared by every probe and status call.

    A probe per program that asks supervisord for its own program every 20 ms
    keeps supervisord's single loop busy answering (N requests per poll round,
    between its spawns). One table costs one request per round whatever N is,
    but it is not cheap either: with 1000 programs supervisord writes about
    a megabyte of XML, 64 KiB per loop iteration, and every iteration walks
    all programs, so one table takes from 0.1 s (idle machine) to seconds
    (loaded). Hence two ways to read it:

    - :meth:`get` (status calls) blocks, and serves a table younger than
      ``min_age`` seconds and twice the time the last fetch took;
    - :meth:`poll` (the engine's probes) never blocks: a table requested
      after the caller's ``after`` if there is one, else None while one
      fetch at a time runs in a background thread. A probe that finds its
      program not there yet asks next time for a table after the one it
      read. The engine polls every
      probe from one loop: a probe that waited for its table there would
      stall every other start and stop, and requirements that arrive in
      waves (the engine hands out starts a few at a time) would cost one
      table per wave instead of one per round.

    Any request that changes states (add, start, stop) calls :meth:`invalidate`:
    a table fetched before it is never served afterwards.
    """

    def __init__(self, fetch: Callable[[], list[dict[str, Any]]], min_age: float = 0.02) -> None:
        self._fetch = fetch
        self.min_age = min_age
        #: Guards the fields below; never held while fetching.
        self._lock = threading.Lock()
        #: One fetch at a time (a blocking get waits for a background fetch).
        self._fetching = threading.Lock()
        self._infos: dict[str, dict[str, Any]] = {}
        #: Monotonic time at which the request behind ``_infos`` was sent.
        self._at = float("-inf")
        self._took = 0.0
        self._valid_after = float("-inf")
        #: The error of the latest failed fetch, and when that request was sent.
        self._error: BaseException | None = None
        self._error_at = float("-inf")
        #: When the latest fetch ended (background fetches keep ``min_age`` apart).
        self._ended = float("-inf")
        self._background = False

    def invalidate(self) -> None:
        """States changed: the next :meth:`get` or :meth:`poll` fetches anew."""
        with self._lock:
            self._valid_after = time.monotonic()

    def _refresh(self) -> None:
        """Fetch one table (the caller holds ``_fetching``); a failure is kept
        for :meth:`poll` and raised."""
        at = time.monotonic()
        try:
            infos = self._fetch()
        except Exception as exc:
            with self._lock:
                self._error, self._error_at, self._ended = exc, at, time.monotonic()
            raise
        table = {str(i["group"]): i for i in infos if i.get("name") == i.get("group")}
        with self._lock:
            self._ended = time.monotonic()
            self._took = self._ended - at
            if at > self._at:
                self._infos, self._at = table, at

    def get(self, newer_than: float | None = None) -> tuple[dict[str, dict[str, Any]], float]:
        """(group name -> process info, monotonic time the table was requested);
        fetched anew, waiting for it, when older than ``min_age`` or twice the
        last fetch's time, or than ``newer_than``."""
        with self._fetching:
            with self._lock:
                now = time.monotonic()
                fresh = self._at > self._valid_after \
                    and now - self._at < max(self.min_age, 2 * self._took) \
                    and (newer_than is None or self._at >= newer_than)
            if not fresh:
                self._refresh()
            with self._lock:
                return self._infos, self._at

    def poll(self, after: float) -> tuple[dict[str, dict[str, Any]], float] | None:
        """Without waiting: (group name -> process info, request time) of a table
        requested after ``after`` (monotonic; and after the last
        :meth:`invalidate`), or None while it is being fetched. Raises the error
        of a fetch that should have served the caller (supervisord gone)."""
        with self._lock:
            wanted = max(after, self._valid_after)
            if self._at > wanted:
                return self._infos, self._at
            if self._error is not None and self._error_at > wanted:
                raise self._error
            if self._background or time.monotonic() - self._ended < self.min_age:
                return None
            self._background = True
        threading.Thread(target=self._fetch_in_background, name="supervisord-table",
                         daemon=True).start()
        return None

    def _fetch_in_background(self) -> None:
        try:
            with self._fetching, contextlib.suppress(Exception):
                self._refresh()  # a failure is kept for poll()
        finally:
            with self._lock:
                self._background = False


class Call(Future[Any]):
    """One request of a :class:`Batcher`, with when its answer arrived."""

    #: Monotonic time the multicall carrying it was answered (or failed).
    answered_at: float = float("inf")


class Batcher:
    """Requests sent together: every call queued while one ``system.multicall`` is
    on its way goes in the next one.

    supervisord answers one request per loop iteration and pays for every
    connection; stopping a thousand programs one request each (stop, then
    remove) costs seconds where a hand-written ``stopAllProcesses`` costs one
    request. Callers (engine workers, probes) submit without waiting and get
    a :class:`Call`; one sender thread, started on demand, waits ``linger``
    seconds for the rest of a burst (a pass of the engine's probe loop, the
    workers' starts), drains the queue into one multicall at a time, and exits
    when the queue is empty (nothing of procmgmt stays behind between
    switches). A call's fault comes back as its own
    :class:`xmlrpc.client.Fault`; a failed request (no supervisord, a closed
    socket) fails every call it carried. Only calls that supervisord answers
    at once belong here: a deferred one (``stopProcessGroup``, any ``wait``)
    holds the whole multicall for a loop iteration.
    """

    def __init__(self, connect: Callable[[], Any], linger: float = 0.002) -> None:
        self._connect = connect
        self.linger = linger
        self._lock = threading.Lock()
        self._queue: list[tuple[str, tuple[Any, ...], Call]] = []
        self._sending = False

    def submit(self, method: str, *params: Any) -> Call:
        """Queue ``method(*params)`` (e.g. ``"supervisor.stopProcess"``)."""
        call = Call()
        with self._lock:
            self._queue.append((method, params, call))
            if self._sending:
                return call
            self._sending = True
        threading.Thread(target=self._send_all, name="supervisord-batch", daemon=True).start()
        return call

    def _send_all(self) -> None:
        time.sleep(self.linger)
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._sending = False
                    return
            self._send(batch)

    def _send(self, batch: list[tuple[str, tuple[Any, ...], Call]]) -> None:
        calls = [{"methodName": m, "params": list(p)} for m, p, _ in batch]
        try:
            results = list(self._connect().system.multicall(calls))
        except Exception as exc:  # handed to every caller it carried, not swallowed
            results = [exc] * len(batch)
        results += [DeployError("supervisord answered fewer calls than it was sent")] \
            * (len(batch) - len(results))
        now = time.monotonic()
        for (_, _, call), res in zip(batch, results, strict=False):
            call.answered_at = now
            if isinstance(res, Exception):
                call.set_exception(res)
            elif isinstance(res, dict) and "faultCode" in res:
                call.set_exception(xmlrpc.client.Fault(res["faultCode"],
                                                       str(res.get("faultString", ""))))
            else:
                call.set_result(res[0] if isinstance(res, list) and res else res)
