"""Which process listens on a TCP port, read from Linux's ``/proc``.

A connection that succeeds proves only that *something* listens. Readiness
checks and the pre-flight of a switch need to know *who*: a program that
already held the port answers in place of the one just started, which
meanwhile crash-loops on "address in use". The kernel lists listening
sockets with their inode in ``/proc/net/tcp`` and ``/proc/net/tcp6``; a
process holds the socket when one of its ``/proc/<pid>/fd`` entries links to
``socket:[<inode>]``.

The table of listening sockets comes from sock_diag netlink
(:mod:`procmgmt.sockdiag`) where the kernel answers it, which costs
microseconds where ``/proc/net/tcp`` costs milliseconds once many
connections exist. Where neither exists (FreeBSD, macOS) every function
here says "unknown" (None) and callers fall back to what a connection proves.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from procmgmt import sockdiag
from procmgmt.pids import stat_fields

NET_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
#: The ``st`` column of a listening socket.
LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket: its inode and the uid that created it."""

    inode: int
    uid: int


def listeners(port: int) -> list[Listener] | None:
    """Every socket listening on ``port`` (any address, IPv4 and IPv6); None when the
    kernel does not say (no ``/proc/net/tcp``)."""
    table = listen_table()
    return None if table is None else table.get(port, [])


def listen_table() -> dict[int, list[Listener]] | None:
    """port -> the sockets listening on it, read once (a pre-flight of many processes
    asks for many ports); None when the kernel does not say."""
    diag = sockdiag.listening()
    if diag is None:
        return proc_listen_table()
    found: dict[int, list[Listener]] = {}
    for port, uid, inode in diag:
        found.setdefault(port, []).append(Listener(inode, uid))
    return found


class RecentListenTable:
    """:func:`listen_table`, read again only when the last reading is older than
    ``max_age`` seconds: a hundred readiness checks polled in one pass of the
    scheduler share one reading instead of making a hundred."""

    def __init__(self, max_age: float = 0.005,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = -1.0
        self._table: dict[int, list[Listener]] | None = None

    def __call__(self) -> dict[int, list[Listener]] | None:
        with self._lock:
            now = self._clock()
            if self._read_at < 0 or now - self._read_at > self.max_age:
                self._table = listen_table()
                self._read_at = self._clock()
            return self._table


def proc_listen_table() -> dict[int, list[Listener]] | None:
    """:func:`listen_table` from ``/proc/net/tcp`` and ``tcp6``; None without them."""
    found: dict[int, list[Listener]] = {}
    seen_table = False
    for table in NET_TABLES:
        try:
            with open(table, encoding="ascii", errors="replace") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        seen_table = True
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != LISTEN:
                continue
            try:
                port = int(cols[1].rpartition(":")[2], 16)
                found.setdefault(port, []).append(Listener(int(cols[9]), int(cols[7])))
            except ValueError:
                continue
    return found if seen_table else None


def _children() -> dict[int, list[int]]:
    """parent pid -> child pids of every process (one pass over ``/proc/*/stat``)."""
    tree: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return tree
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = stat_fields(entry)
        try:
            if fields is not None:
                tree.setdefault(int(fields[1]), []).append(int(entry))
        except (IndexError, ValueError):
            continue
    return tree


def process_tree(roots: Iterable[int]) -> set[int]:
    """``roots`` and all their descendants (pids that are gone drop out)."""
    children = _children()
    result: set[int] = set()
    todo = [pid for pid in roots if pid > 1]
    while todo:
        pid = todo.pop()
        if pid in result:
            continue
        result.add(pid)
        todo.extend(children.get(pid, ()))
    return result


def socket_inodes(pid: int) -> set[int] | None:
    """Inodes of the sockets ``pid`` holds open; None when its fds cannot be read
    (gone, or another user's process and we are not root)."""
    base = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(base)
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target.endswith("]"):
            inodes.add(int(target[8:-1]))
    return inodes


def holders(inodes: set[int], pids: Iterable[int] | None = None) -> dict[int, int]:
    """inode -> a pid holding it, among ``pids`` (default: every process)."""
    if pids is None:
        try:
            pids = sorted(int(e) for e in os.listdir("/proc") if e.isdigit())
        except OSError:
            return {}
    found: dict[int, int] = {}
    for pid in pids:
        held = socket_inodes(pid)
        for inode in (held or set()) & inodes:
            found.setdefault(inode, pid)
        if len(found) == len(inodes):
            break
    return found


def command_of(pid: int) -> str:
    """The command line of ``pid`` for messages (``?`` when unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw.split(b"\0") if w]
    text = " ".join(words) or "?"
    return text if len(text) <= 120 else text[:117] + "..."


def describe_holder(port: int, listener: Listener, pid: int | None) -> str:
    """``pid N (command)``, or the uid when the holder's fds cannot be read."""
    if pid is not None:
        return f"pid {pid} ({command_of(pid)})"
    return f"a process of uid {listener.uid} (its file descriptors are not readable)"


def ownership_problem(port: int, roots: Iterable[int], name: str,
                      table: dict[int, list[Listener]] | None = None) -> str | None:
    """None when a socket listening on ``port`` belongs to ``roots`` or a descendant
    (or when this cannot be known here: no ``/proc``); otherwise why not, naming the
    holder. ``table``: the listening sockets, when the caller read them already."""
    found = listeners(port) if table is None else table.get(port, [])
    if found is None:
        return None
    root_list = [pid for pid in roots if pid > 1]
    if not found:
        return f"nothing listens on port {port}"
    if not root_list:
        return f"port {port} accepts connections, but the pid of {name} is not known yet"
    inodes = {ln.inode for ln in found}
    # Usually the started pid listens itself: look there before walking all of /proc.
    if holders(inodes, root_list) or holders(inodes, process_tree(root_list)):
        return None
    others = holders(inodes)
    first = found[0]
    holder = others.get(first.inode)
    return (f"port {port} is held by {describe_holder(port, first, holder)}, not by {name} "
            f"(pid {', '.join(map(str, sorted(root_list)))})")


__all__ = ["Listener", "RecentListenTable", "command_of", "describe_holder", "holders",
           "listen_table", "listeners", "ownership_problem", "proc_listen_table", "process_tree",
           "socket_inodes"]
