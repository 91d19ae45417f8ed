"""What readiness checks wait on instead of a timer, and what they no longer do.

- a log-line check runs as soon as its file changes (inotify on the directory,
  :mod:`procmgmt.filewatch`), whatever its interval says;
- a notify check wakes on its socket;
- a TCP check whose listener must be the started process's makes no
  connection while the kernel lists nobody listening on the port, and reads
  that list through sock_diag (:mod:`procmgmt.sockdiag`), the same as ``/proc``.
"""

from __future__ import annotations

import os
import select
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt import listeners, sockdiag
from procmgmt import readiness as rd
from procmgmt.filewatch import FileWatch

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify, netlink")


@pytest.fixture
def files() -> Iterator[FileWatch]:
    watch = FileWatch.open()
    if watch is None:
        pytest.skip("no inotify here")
    try:
        yield watch
    finally:
        watch.close()


def _readable(fd: int, timeout: float = 2.0) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


@linux_only
def test_log_line_runs_when_the_file_changes_not_when_the_interval_says(
        tmp_path: Path, files: FileWatch) -> None:
    """With a 60 s interval the check would not look again for a minute; the write
    makes the watcher's descriptor readable and the next call looks at once."""
    log = tmp_path / "app.log"
    log.write_text("old ready\n")
    c = rd.ProbeContext(name="p", files=files, log_offsets={str(log): log.stat().st_size})
    probe = rd.make_probe(rd.LogLine(path=str(log), pattern="^ready$", interval=60,
                                     timeout=600), c)
    assert [w.fileno() for w in probe.sources()] == [files.fileno()]
    assert probe() is False
    assert probe() is False  # rate-limited: nothing changed
    with open(log, "a") as f:
        f.write("ready\n")
    assert _readable(files.fileno())
    files.drain()  # as the scheduler does when the descriptor fires
    assert probe() is True


@linux_only
def test_file_watch_sees_a_file_created_later_and_only_its_own_changes(
        tmp_path: Path, files: FileWatch) -> None:
    mine = files.watch(str(tmp_path / "later.log"))
    other = files.watch(str(tmp_path / "other.log"))
    assert mine is not None and other is not None
    assert not mine.changed() and not other.changed()
    (tmp_path / "later.log").write_text("x\n")
    assert _readable(files.fileno())
    assert not mine.changed()  # not drained yet
    mine.drain()
    assert mine.changed()
    assert not mine.changed()  # once per change
    assert not other.changed()


@linux_only
def test_file_watch_follows_a_symlinked_directory(tmp_path: Path, files: FileWatch) -> None:
    """Writes happen in the real directory; the watch is put there."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    watch = files.watch(str(tmp_path / "link" / "app.log"))
    assert watch is not None
    (real / "app.log").write_text("ready\n")
    assert _readable(files.fileno())
    files.drain()
    assert watch.changed()


@linux_only
def test_file_watch_of_a_missing_directory_is_none(tmp_path: Path, files: FileWatch) -> None:
    """Nothing to watch: the check polls (make_probe names no descriptor)."""
    assert files.watch(str(tmp_path / "missing" / "app.log")) is None
    c = rd.ProbeContext(name="p", files=files)
    probe = rd.make_probe(rd.LogLine(path=str(tmp_path / "missing" / "a.log"), pattern="x"), c)
    assert probe.sources() == ()


def test_notify_socket_is_what_the_check_waits_on(tmp_path: Path) -> None:
    sock = rd.NotifySocket(rd.notify_socket_path(str(tmp_path), "svc"))
    try:
        c = rd.ProbeContext(name="p", notify=sock)
        probe = rd.make_probe(rd.Notify(interval=60, timeout=600), c)
        assert probe.sources() == (sock,)
        assert probe() is False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1", sock.path)
        assert _readable(sock.fileno())
        assert probe() is True  # at once, not after the 60 s interval
    finally:
        sock.close()


def test_tcp_makes_no_connection_while_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection leaves a TIME_WAIT socket behind: while the kernel lists no
    listener on the port, the check says so without connecting."""
    def refuse(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError("connected although nothing listens")

    monkeypatch.setattr(socket, "create_connection", refuse)
    c = rd.ProbeContext(name="p", roots=lambda: [os.getpid()], listening=lambda: {})
    assert rd.TCP(port=1).probe(c) == ("connect to 127.0.0.1:1: Connection refused "
                                       "(nothing listens on port 1)")


def test_tcp_without_ownership_still_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pids to compare with (no roots), whoever accepts counts: the
    connection is the check, the table is not consulted."""
    tried: list[object] = []

    def refuse(address: object, timeout: float = 0) -> socket.socket:
        tried.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    c = rd.ProbeContext(name="p", listening=lambda: {})
    assert "Connection refused" in (rd.TCP(port=1).probe(c) or "")
    assert tried == [("127.0.0.1", 1)]


@linux_only
def test_sock_diag_lists_the_same_listeners_as_proc() -> None:
    """The netlink answer and /proc/net/tcp agree on a socket we listen on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        diag = sockdiag.listening()
        if diag is None:
            pytest.skip("sock_diag is not available here")
        proc = listeners.proc_listen_table()
        assert proc is not None
        ours = [(p, uid, inode) for p, uid, inode in diag if p == port]
        assert len(ours) == 1
        assert proc[port] == [listeners.Listener(ours[0][2], ours[0][1])]
        assert listeners.listen_table() is not None
        assert port in (listeners.listen_table() or {})
    # A closed socket is no longer listed.
    assert port not in {p for p, _, _ in sockdiag.listening() or []}


def test_recent_listen_table_is_read_once_per_max_age(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []

    def table() -> dict[int, list[listeners.Listener]]:
        reads.append(1)
        return {80: [listeners.Listener(1, 0)]}

    monkeypatch.setattr(listeners, "listen_table", table)
    clock = [0.0]
    recent = listeners.RecentListenTable(max_age=0.01, clock=lambda: clock[0])
    assert recent() == recent() == {80: [listeners.Listener(1, 0)]}
    assert len(reads) == 1
    clock[0] = 0.02
    recent()
    assert len(reads) == 2
