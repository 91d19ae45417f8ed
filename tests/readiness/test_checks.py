"""Each readiness kind against real processes: ready, slow starter, never ready."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt import readiness as rd
from procmgmt.errors import ReadinessError
from tests.e2e.util import free_port_block

LISTENER = """
import socket, sys, time
time.sleep(float(sys.argv[2]))
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
"""


@pytest.fixture
def slow_listener() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A TCP listener that opens its port 0.5 s after it started."""
    port = free_port_block(1)
    proc = subprocess.Popen([sys.executable, "-c", LISTENER, str(port), "0.5"])
    try:
        yield port, proc
    finally:
        proc.kill()
        proc.wait()


def ctx(name: str = "p", pid_file: str | None = None) -> rd.ProbeContext:
    return rd.ProbeContext(name=name, pid_file=pid_file)


@pytest.mark.e2e
def test_tcp_slow_starter(slow_listener: tuple[int, subprocess.Popen[bytes]]) -> None:
    """TCP waits for a port that opens late, and reports how long it took."""
    port, _ = slow_listener
    waited = rd.wait_ready(rd.TCP(port=port, timeout=10), ctx())
    assert 0.3 < waited < 5


@pytest.mark.e2e
def test_tcp_never_ready() -> None:
    """A port nobody opens fails after the timeout naming the process, check and error."""
    port = free_port_block(1)
    with pytest.raises(ReadinessError) as info:
        rd.wait_ready(rd.TCP(port=port, timeout=0.5), ctx("web"))
    msg = str(info.value)
    assert "web did not become ready within" in msg
    assert f"tcp 127.0.0.1:{port}" in msg
    assert "refused" in msg.lower()


@pytest.mark.e2e
def test_process_death_fails_at_once(slow_listener: tuple[int, subprocess.Popen[bytes]]) -> None:
    """With an 'alive' check, a dead process fails the wait without waiting the timeout."""
    port = free_port_block(1)
    started = time.monotonic()
    with pytest.raises(ReadinessError, match="crashed"):
        rd.wait_ready(rd.TCP(port=port, timeout=30), ctx(), alive=lambda: "crashed")
    assert time.monotonic() - started < 5


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 200 if self.path == "/ok" else 503
        self.send_response(code)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[int]:
    """An HTTP server answering 200 on /ok and 503 elsewhere."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_http_status(http_server: int) -> None:
    """HTTP is ready on the expected status only."""
    base = f"http://127.0.0.1:{http_server}"
    assert rd.wait_ready(rd.HTTP(url=f"{base}/ok", timeout=5), ctx()) < 5
    with pytest.raises(ReadinessError, match="status 503"):
        rd.wait_ready(rd.HTTP(url=f"{base}/health", timeout=0.3), ctx())
    assert rd.wait_ready(rd.HTTP(url=f"{base}/health", status=503, timeout=5), ctx()) < 5


def test_command(tmp_path: Path) -> None:
    """Command is ready once it exits 0 (argv or shell string); the last error is reported."""
    flag = tmp_path / "flag"
    threading.Timer(0.3, flag.touch).start()
    assert rd.wait_ready(rd.Command(command=["test", "-e", str(flag)], timeout=5), ctx()) > 0.1
    with pytest.raises(ReadinessError, match="exit status 3 nope"):
        rd.wait_ready(rd.Command(command="echo nope >&2; exit 3", timeout=0.3), ctx())


def test_log_line_only_counts_new_lines(tmp_path: Path) -> None:
    """A matching line already in the log before the start does not count."""
    log = tmp_path / "app.log"
    log.write_text("ready to accept connections (old run)\n")
    c = ctx()
    c.log_offsets[str(log)] = log.stat().st_size
    check = rd.LogLine(path=str(log), pattern=r"^ready to accept", timeout=0.3)
    with pytest.raises(ReadinessError, match="no line matching"):
        rd.wait_ready(check, c)

    def later() -> None:
        with open(log, "a") as f:
            f.write("starting\nready to accept connections\n")

    threading.Timer(0.2, later).start()
    assert rd.wait_ready(rd.LogLine(path=str(log), pattern=r"^ready to accept", timeout=5),
                         c) > 0.1


def test_pid_file(tmp_path: Path) -> None:
    """PidFile needs a pid file naming a live process."""
    pid_file = tmp_path / "p.pid"
    with pytest.raises(ReadinessError, match="does not exist"):
        rd.wait_ready(rd.PidFile(timeout=0.2), ctx(pid_file=str(pid_file)))
    proc = subprocess.Popen(["sleep", "30"])
    try:
        pid_file.write_text(f"{proc.pid}\n")
        assert rd.wait_ready(rd.PidFile(timeout=2), ctx(pid_file=str(pid_file))) < 2
    finally:
        proc.kill()
        proc.wait()
    with pytest.raises(ReadinessError, match="is not running"):
        rd.wait_ready(rd.PidFile(timeout=0.2), ctx(pid_file=str(pid_file)))


def test_notify_socket(tmp_path: Path) -> None:
    """Notify is ready when the process sends READY=1 to $NOTIFY_SOCKET (sd_notify)."""
    path = rd.notify_socket_path(str(tmp_path), "svc")
    sock = rd.NotifySocket(path)
    c = ctx()
    c.notify = sock
    try:
        code = ("import os, socket, time; time.sleep(0.3); "
                "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
                "s.sendto(b'STATUS=warming up\\nREADY=1', os.environ['NOTIFY_SOCKET'])")
        proc = subprocess.Popen([sys.executable, "-c", code],
                                env={**os.environ, "NOTIFY_SOCKET": path})
        assert rd.wait_ready(rd.Notify(timeout=5), c) > 0.1
        proc.wait()
    finally:
        sock.close()
    assert not os.path.exists(path)


def test_json_round_trip() -> None:
    """Every kind survives the manifest (to_json/from_json)."""
    for check in (rd.TCP(port=1234, host="127.0.0.1", timeout=3), rd.HTTP(url="http://x/"),
                  rd.Command(command=["a", "b c"], environment={"K": "v"}),
                  rd.Command(command="echo hi"), rd.LogLine(path="/l", pattern="x+"),
                  rd.PidFile(path="/p"), rd.Notify(interval=0.5)):
        assert rd.from_json(check.to_json()) == check
    assert rd.from_json(None) is None
    with pytest.raises(ValueError, match="unknown readiness kind"):
        rd.from_json({"kind": "telepathy"})


def test_probe_is_rate_limited() -> None:
    """The engine's non-blocking probe checks at most once per interval."""
    calls = []

    class Counting(rd.TCP):
        def probe(self, ctx: rd.ProbeContext) -> str | None:
            calls.append(1)
            return "not yet"

    clock = [0.0]
    probe = rd.make_probe(Counting(port=1, interval=1.0, timeout=100), ctx(),
                          clock=lambda: clock[0])
    for _ in range(5):
        assert probe() is False
    assert len(calls) == 1
    clock[0] = 1.5
    assert probe() is False
    assert len(calls) == 2
