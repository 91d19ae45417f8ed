"""Portable readiness declarations: when is a started process *ready* for its dependents?

Started is not ready: PostgreSQL forks long before it accepts connections.
A process declares one check, with an interval and a timeout:

- :class:`TCP` — a port accepts connections;
- :class:`HTTP` — a GET returns the expected status;
- :class:`Command` — a command exits 0;
- :class:`LogLine` — a line of a log file matches a regex (only lines
  written after the start count);
- :class:`PidFile` — the pid file exists and names a live process;
- :class:`Notify` — the process sends ``READY=1`` to ``$NOTIFY_SOCKET``
  (systemd's sd_notify protocol; procmgmt provides the socket for every
  backend, systemd uses it natively).

Checks are plain data (``to_json``/``from_json``) so they live in the
generation manifest; :func:`wait_ready` runs one from the engine.

A connection proves only that *something* listens. When the engine says
which pids it started (:attr:`ProbeContext.roots`), :class:`TCP` and
:class:`HTTP` pass only once the listening socket belongs to one of them or
a descendant (:mod:`procmgmt.listeners`): another program that already held
the port cannot make a crash-looping process look ready. Without ``/proc``
(FreeBSD, macOS) the connection is all that is checked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Protocol

from procmgmt import fsutil
from procmgmt.deploy.scheduler import EventSource, Watched
from procmgmt.errors import DeployError, ReadinessError
from procmgmt.filewatch import FileWatch
from procmgmt.listeners import Listener, listen_table, ownership_problem
from procmgmt.pids import pid_alive, read_pid_file, report, trusted_pid

DEFAULT_INTERVAL = 0.05
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Readiness:
    """Base class: interval between probes and overall timeout (seconds)."""

    kind: ClassVar[str] = ""
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT

    def to_json(self) -> dict[str, Any]:
        """Plain-data form for the generation manifest."""
        data = asdict(self)
        data["kind"] = self.kind
        return data

    def describe(self) -> str:
        """One-line description for messages."""
        return self.kind

    def probe(self, ctx: ProbeContext) -> str | None:
        """None when ready, else why not (the last error is reported on timeout)."""
        raise NotImplementedError

    def wakeup(self, ctx: ProbeContext) -> Wakeup | None:
        """What says "probe me now" before the interval is up (None: nothing, poll)."""
        return None


class Wakeup(EventSource, Protocol):
    """An event source for the scheduler (a descriptor that becomes readable when a
    check may have passed, drained by the scheduler), and whether something
    happened for this check since the last question (see :func:`make_probe`)."""

    def changed(self) -> bool:
        """True when something happened since the previous call."""


@dataclass
class ProbeContext:
    """What a probe may need besides its own fields."""

    name: str
    pid_file: str | None = None
    #: Whose process the pid file must name (:func:`procmgmt.pids.trusted_pid`):
    #: the uid the service runs as and this deployment's marker.
    pid_uid: int | None = None
    marker: str = ""
    #: Log size at start time (LogLine only reads what came after).
    log_offsets: dict[str, int] = field(default_factory=dict)
    notify: NotifySocket | None = None
    #: The pids the process manager started for this process (its main pid, a wrapped
    #: daemon's pid): a listener must belong to one of them or a descendant. None:
    #: whoever listens counts (no process to compare with).
    roots: Callable[[], Sequence[int]] | None = None
    #: The kernel's table of listening sockets, possibly a few milliseconds old
    #: (:class:`procmgmt.listeners.RecentListenTable`, shared by every check of
    #: one switch): a port nobody listens on fails without a connection.
    listening: Callable[[], dict[int, list[Listener]] | None] = listen_table
    #: Where log-line checks learn that their file changed (None: they poll).
    files: FileWatch | None = None

    def listener_problem(self, port: int,
                         table: dict[int, list[Listener]] | None = None) -> str | None:
        """None when the socket listening on ``port`` is the started process's (or
        that cannot be known here), else who holds it (``table``: the listening
        sockets already read)."""
        if self.roots is None:
            return None
        return ownership_problem(port, self.roots(), self.name, table)


@dataclass(frozen=True)
class TCP(Readiness):
    """Ready when ``host:port`` accepts a TCP connection."""

    kind: ClassVar[str] = "tcp"
    port: int = 0
    host: str = "127.0.0.1"

    def describe(self) -> str:
        return f"tcp {self.host}:{self.port}"

    def probe(self, ctx: ProbeContext) -> str | None:
        # Where the listener must be the started process's, the kernel's table of
        # listening sockets is read first: while nothing listens, no connection
        # is made (each one leaves a TIME_WAIT socket behind, and a hundred
        # checks every 20 ms cost more CPU than the programs they wait for).
        table = ctx.listening() if ctx.roots is not None else None
        if table is not None and self.port not in table:
            # What a connection would meet (the kernel refuses it), in the words
            # a failed connect reports.
            return (f"connect to {self.host}:{self.port}: {os.strerror(errno.ECONNREFUSED)} "
                    f"(nothing listens on port {self.port})")
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                pass
        except OSError as exc:
            return f"connect to {self.host}:{self.port}: {exc.strerror or exc}"
        return ctx.listener_problem(self.port, table)


@dataclass(frozen=True)
class HTTP(Readiness):
    """Ready when GET ``url`` answers with ``status``."""

    kind: ClassVar[str] = "http"
    url: str = ""
    status: int = 200
    host_header: str | None = None

    def describe(self) -> str:
        return f"http GET {self.url} -> {self.status}"

    def probe(self, ctx: ProbeContext) -> str | None:
        req = urllib.request.Request(self.url)
        if self.host_header:
            req.add_header("Host", self.host_header)
        try:
            with urllib.request.urlopen(req, timeout=2.0) as resp:
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except (urllib.error.URLError, OSError) as exc:
            return f"GET {self.url}: {getattr(exc, 'reason', exc)}"
        if code != self.status:
            return f"GET {self.url}: status {code}"
        return ctx.listener_problem(self.port())

    def port(self) -> int:
        """The TCP port the URL connects to (80/443 by default)."""
        parts = urllib.parse.urlsplit(self.url)
        try:
            port = parts.port
        except ValueError:
            port = None
        return port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class Command(Readiness):
    """Ready when the command exits 0 (argv list, or a string run by /bin/sh)."""

    kind: ClassVar[str] = "command"
    command: str | Sequence[str] = ""
    environment: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        cmd = self.command if isinstance(self.command, str) else " ".join(self.command)
        return f"command {cmd!r}"

    def probe(self, ctx: ProbeContext) -> str | None:
        argv = ["/bin/sh", "-c", self.command] if isinstance(self.command, str) \
            else list(self.command)
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=max(self.timeout,
                                  1.0), env={**os.environ, **self.environment}, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if proc.returncode == 0:
            return None
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        return f"exit status {proc.returncode} {tail[0]}".strip()

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["command"] = self.command if isinstance(self.command, str) else list(self.command)
        data["environment"] = dict(self.environment)
        return data


@dataclass(frozen=True)
class LogLine(Readiness):
    """Ready when a line written to ``path`` after the start matches ``pattern``."""

    kind: ClassVar[str] = "log"
    path: str = ""
    pattern: str = ""

    def describe(self) -> str:
        return f"log {self.path} matches {self.pattern!r}"

    def probe(self, ctx: ProbeContext) -> str | None:
        offset = ctx.log_offsets.get(self.path, 0)
        try:
            with open(self.path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError as exc:
            return f"{self.path}: {exc.strerror}"
        if re.search(self.pattern, text, re.MULTILINE):
            return None
        return f"no line matching {self.pattern!r} yet"

    def wakeup(self, ctx: ProbeContext) -> Wakeup | None:
        """A write to the log file (seen by inotify on its directory)."""
        return ctx.files.watch(self.path) if ctx.files is not None else None


@dataclass(frozen=True)
class PidFile(Readiness):
    """Ready when the pid file (the process's own if ``path`` is empty) names a live process."""

    kind: ClassVar[str] = "pidfile"
    path: str = ""

    def describe(self) -> str:
        return f"pid file {self.path or '(the process pid file)'}"

    def probe(self, ctx: ProbeContext) -> str | None:
        path = self.path or ctx.pid_file
        if not path:
            return "no pid file known"
        if ctx.marker:
            verdict = report(trusted_pid(path, ctx.pid_uid, ctx.marker, process=ctx.name))
            return None if verdict.trusted else verdict.detail
        pid = read_pid_file(path)
        if pid is None:
            return f"{path} does not exist or holds no pid"
        return None if pid_alive(pid) else f"pid {pid} from {path} is not running"


@dataclass(frozen=True)
class Notify(Readiness):
    """Ready when the process sends ``READY=1`` to ``$NOTIFY_SOCKET`` (sd_notify)."""

    kind: ClassVar[str] = "notify"

    def describe(self) -> str:
        return "sd_notify READY=1"

    def probe(self, ctx: ProbeContext) -> str | None:
        if ctx.notify is None:
            return "no notification socket"
        return None if ctx.notify.ready() else "no READY=1 received yet"

    def wakeup(self, ctx: ProbeContext) -> Wakeup | None:
        """A datagram on the notification socket."""
        return ctx.notify


@dataclass(frozen=True)
class Liveness:
    """A readiness check run periodically while the process runs: after
    ``failures`` failed probes in a row the process is killed (SIGKILL), and
    its restart policy starts it again. Readiness says when a start is done;
    liveness notices a process that still runs but no longer answers (a
    deadlock, a lost listener), which no process manager sees by itself.

    ``check`` is a :class:`TCP`, :class:`HTTP`, :class:`Command` or
    :class:`PidFile` declaration (its own ``interval`` and ``timeout`` are
    unused here); ``period`` is the time between probes, ``timeout`` bounds
    one probe, ``delay`` passes before the first one (a slow start).
    """

    check: Readiness
    period: float = 10.0
    timeout: float = 5.0
    failures: int = 3
    delay: float = 0.0

    def describe(self) -> str:
        """One-line description for messages and comments."""
        return (f"{self.check.describe()} every {self.period:g} s, killed after "
                f"{self.failures} failure{'s' if self.failures != 1 else ''} in a row")

    def to_json(self) -> dict[str, Any]:
        """Plain-data form for the generation manifest and JSON specs."""
        return {"check": self.check.to_json(), "period": self.period,
                "timeout": self.timeout, "failures": self.failures, "delay": self.delay}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Liveness | None:
        """Inverse of :meth:`to_json`; None stays None."""
        if not data:
            return None
        check = from_json(data.get("check"))
        if check is None:
            raise ValueError("a liveness declaration needs a check")
        return cls(check=check, period=data.get("period", 10.0),
                   timeout=data.get("timeout", 5.0), failures=data.get("failures", 3),
                   delay=data.get("delay", 0.0))


#: The kinds a liveness check may use: a log line, once matched, stays matched
#: and says nothing about the present; sd_notify liveness is systemd's
#: ``WATCHDOG=1`` protocol, which the program itself must speak.
LIVENESS_KINDS = ("tcp", "http", "command", "pidfile")


KINDS: dict[str, type[Readiness]] = {c.kind: c for c in (TCP, HTTP, Command, LogLine, PidFile,
                                                         Notify)}


def from_json(data: Mapping[str, Any] | None) -> Readiness | None:
    """Inverse of ``to_json``; None stays None."""
    if not data:
        return None
    cls = KINDS.get(str(data.get("kind")))
    if cls is None:
        raise ValueError(f"unknown readiness kind {data.get('kind')!r}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def notify_socket_path(runtime_dir: str, name: str) -> str:
    """Where procmgmt listens for a process's READY=1 (kept short: 107-byte limit)."""
    return os.path.join(runtime_dir, "procmgmt-notify", f"{name}.sock")


class NotifySocket:
    """A datagram socket that receives sd_notify messages for one process."""

    def __init__(self, path: str) -> None:
        self.path = path
        fsutil.ensure_dir(os.path.dirname(path))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        os.chmod(path, 0o666)  # the process may run as another user
        self.sock.setblocking(False)
        self._ready = False

    def fileno(self) -> int:
        """Readable when a message arrived (the scheduler waits on it)."""
        return self.sock.fileno()

    def drain(self) -> None:
        """Nothing to do: the check reads the messages itself (:meth:`ready`)."""

    def changed(self) -> bool:
        """Always "maybe": reading an empty non-blocking socket costs nothing, so
        the check itself (:meth:`ready`) finds out."""
        return True

    def ready(self) -> bool:
        """Drain pending messages; True once READY=1 arrived."""
        while not self._ready:
            try:
                msg = self.sock.recv(4096).decode(errors="replace")
            except BlockingIOError:
                break
            if any(line.strip() == "READY=1" for line in msg.splitlines()):
                self._ready = True
        return self._ready

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def make_probe(check: Readiness, ctx: ProbeContext,
               alive: Callable[[], str | None] | None = None,
               clock: Callable[[], float] = time.monotonic) -> Watched:
    """A non-blocking probe for the engine's scheduler: True once ready, False while not
    (rate-limited to ``check.interval``), :class:`ReadinessError` on timeout or death.

    When the check has a :meth:`Readiness.wakeup` (a log file's inotify watch, the
    notification socket), the scheduler waits on its descriptor and the check runs
    as soon as it fires, whatever the interval says."""
    start = clock()
    state = {"next": start}
    wake = check.wakeup(ctx)

    def probe() -> bool:
        now = clock()
        woken = wake is not None and wake.changed()
        if now < state["next"] and not woken:
            return False
        state["next"] = now + check.interval
        last = check.probe(ctx)
        if not last:
            return True
        if alive is not None:
            died = alive()
            if died:
                raise ReadinessError(ctx.name, check, f"{died} (last probe: {last})", now - start)
        if now - start >= check.timeout:
            raise ReadinessError(ctx.name, check, last, now - start)
        return False

    return Watched(probe, lambda: (wake,) if wake is not None else ())


def grace_probe(name: str, grace: float, alive: Callable[[], str | None],
                clock: Callable[[], float] = time.monotonic) -> Watched:
    """Without a readiness declaration: ready once the process is still alive ``grace``
    seconds after it started (an immediate crash still fails the switch). Nothing
    to wait on, and nothing to ask before the grace has passed."""
    start = clock()

    def probe() -> bool:
        now = clock()
        if now - start < grace:
            return False
        died = alive()
        if died:
            raise DeployError(f"{name} exited right after starting: {died}")
        return True

    return Watched(probe, tuple, not_before=lambda: start + grace)


def wait_ready(check: Readiness, ctx: ProbeContext,
               alive: Callable[[], str | None] | None = None,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> float:
    """Probe until ready; seconds waited. Raises :class:`ReadinessError` on timeout.

    ``alive`` (optional) returns a reason when the process already died, so
    a crashed process fails at once instead of after the whole timeout.
    """
    start = clock()
    last = "not probed"
    while True:
        last = check.probe(ctx) or ""
        if not last:
            return clock() - start
        if alive is not None:
            died = alive()
            if died:
                raise ReadinessError(ctx.name, check, f"{died} (last probe: {last})",
                                     clock() - start)
        if clock() - start >= check.timeout:
            raise ReadinessError(ctx.name, check, last, clock() - start)
        sleep(check.interval)
