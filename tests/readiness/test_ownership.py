"""TCP and HTTP readiness accept only a listener of the started process tree.

Real processes: a python http.server holds a port; a check whose started
pids are an unrelated ``sleep`` must not pass, one whose started pid is the
server, or a shell whose child the server is, must. Without ``roots`` (no
started process to compare with) the connection alone counts, as before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from procmgmt import listeners
from procmgmt import readiness as rd
from procmgmt.errors import ReadinessError
from tests.e2e.util import free_port_block, wait_http

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/net/tcp"),
                                reason="needs Linux /proc/net/tcp")


@pytest.fixture
def server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``sh`` running a python http.server as its child: (port, the sh)."""
    port = free_port_block(1)
    proc = subprocess.Popen(["/bin/sh", "-c", f"{sys.executable} -m http.server {port} "
                             "--bind 127.0.0.1 >/dev/null 2>&1; :"], cwd="/")
    try:
        wait_http(port)
        yield port, proc
    finally:
        for pid in sorted(listeners.process_tree([proc.pid]), reverse=True):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(10)


def _child(sh: subprocess.Popen[bytes]) -> int:
    """The http.server pid under ``sh``."""
    return max(listeners.process_tree([sh.pid]) - {sh.pid})


@pytest.fixture
def stranger() -> Iterator[int]:
    proc = subprocess.Popen(["/bin/sleep", "60"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_a_foreign_listener_is_not_ready(kind: str, server: tuple[int, subprocess.Popen[bytes]],
                                         stranger: int) -> None:
    """The port answers, but its listener is no descendant of the started pid: not ready,
    and the reason names the holder's pid and command and the process's own pid."""
    port, sh = server
    check: rd.Readiness = (rd.TCP(port=port) if kind == "tcp"
                           else rd.HTTP(url=f"http://127.0.0.1:{port}/"))
    ctx = rd.ProbeContext(name="web", roots=lambda: [stranger])
    why = check.probe(ctx)
    assert why is not None
    assert f"port {port} is held by pid {_child(sh)} ({sys.executable} -m http.server" in why
    assert f"not by web (pid {stranger})" in why
    with pytest.raises(ReadinessError, match="held by pid"):
        rd.wait_ready(rd.TCP(port=port, timeout=0.3), ctx)


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_the_started_tree_is_ready(kind: str, server: tuple[int, subprocess.Popen[bytes]]) -> None:
    """The listener belongs to the started pid itself, or to a child of it: ready."""
    port, sh = server
    check: rd.Readiness = (rd.TCP(port=port) if kind == "tcp"
                           else rd.HTTP(url=f"http://127.0.0.1:{port}/"))
    assert check.probe(rd.ProbeContext(name="web", roots=lambda: [sh.pid])) is None
    assert check.probe(rd.ProbeContext(name="web", roots=lambda: [_child(sh)])) is None
    # No started pid known yet (a pid file not written): not ready, and it says why.
    why = check.probe(rd.ProbeContext(name="web", roots=lambda: []))
    assert why is not None and "pid of web is not known yet" in why
    # No process to compare with: the connection is what counts.
    assert check.probe(rd.ProbeContext(name="web")) is None


def test_listeners_reads_the_kernel_table(server: tuple[int, subprocess.Popen[bytes]]) -> None:
    """/proc/net/tcp lists the listening socket; its inode leads to the server's pid."""
    port, sh = server
    found = listeners.listeners(port)
    assert found, "no listener found"
    by_inode = listeners.holders({ln.inode for ln in found})
    assert set(by_inode.values()) == {_child(sh)}
    assert listeners.listeners(free_port_block(1)) == []
