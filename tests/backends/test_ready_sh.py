"""The generated sh readiness checks, run for real against real processes.

Every check kind is waited for by ``dash`` against something the test starts
(a TCP or HTTP listener that appears after ~0.5 s, a pid file, a log line
written later), once succeeding and once failing after its timeout with the
message. Then the generators that use the checks: a sysvinit script run by
hand returns only once its port accepts, and supervisord started by
``run_stateless`` (procmgmt run) starts a dependent only once its dependency
is ready. Everything generated passes ``shellcheck -s sh`` and ``dash -n``.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmgmt import readiness as rd
from procmgmt.backends.base import BuildContext
from procmgmt.backends.bsdrc import BSDRCBackend
from procmgmt.backends.shared import proxy, ready
from procmgmt.backends.supervisord import SupervisordActivator, SupervisordBackend
from procmgmt.backends.systemd import SystemdBackend
from procmgmt.backends.sysvinit import SysVInitBackend
from procmgmt.deploy.build import build, evaluate
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import resolve
from tests import _lanes
from tests.conftest import golden_settings
from tests.e2e.util import free_port_block

DASH = _lanes.tool_path("dash") or "sh"
REPO = Path(__file__).resolve().parents[2]

needs_dash = pytest.mark.requires_tool("dash")


# --------------------------------------------------------------------------- helpers



@contextlib.contextmanager
def tcp_listener(port: int, delay: float) -> Iterator[None]:
    """Listen on ``port`` after ``delay`` seconds (a slow starter), until the block ends."""
    stop = threading.Event()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def serve() -> None:
        if stop.wait(delay):
            return
        server.bind(("127.0.0.1", port))
        server.listen(16)
        server.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


@contextlib.contextmanager
def http_listener(port: int, delay: float, status: int = 200,
                  seen: list[str] | None = None) -> Iterator[None]:
    """An HTTP server on ``port`` after ``delay`` s answering every GET with ``status``
    (records the Host headers it saw in ``seen``)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if seen is not None:
                seen.append(self.headers.get("Host", ""))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    holder: list[http.server.HTTPServer] = []
    stop = threading.Event()

    def serve() -> None:
        if stop.wait(delay):
            return
        srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
        holder.append(srv)
        srv.serve_forever(poll_interval=0.05)
        srv.server_close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if holder:
            holder[0].shutdown()
        thread.join()


def later(delay: float, action: Any) -> threading.Timer:
    """Run ``action`` after ``delay`` seconds (in a thread)."""
    timer = threading.Timer(delay, action)
    timer.start()
    return timer


def wait_script(check: rd.Readiness, *, pid_file: str | None = None, offset: str = "",
                preamble: str = "") -> str:
    """A script that waits for ``check`` (the library plus one wait call)."""
    lines = ["#!/bin/sh", ready.library([check]).rstrip("\n"), preamble]
    lines += ready.wait_lines("svc", check, pid_file=pid_file, offset=offset)
    return "\n".join(lines) + "\n"


def run_sh(text: str, tmp_path: Path, env: dict[str, str] | None = None,
           timeout: float = 20) -> tuple[int, str, float]:
    """Run ``text`` with dash: (exit status, stderr, seconds taken)."""
    path = tmp_path / f"script-{time.monotonic_ns()}.sh"
    path.write_text(text)
    began = time.monotonic()
    proc = subprocess.run([DASH, str(path)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)
    return proc.returncode, proc.stderr, time.monotonic() - began


def lint(texts: list[str]) -> None:
    """shellcheck -s sh and dash -n accept every text (once per content, tests/_lanes.py)."""
    _lanes.assert_lints_clean(texts, _lanes.SHELLCHECK, (DASH, "-n"))


def restricted_path(tmp_path: Path, tools: list[str]) -> str:
    """A PATH holding only ``tools`` (symlinks), to force a fallback of the chain."""
    bin_dir = tmp_path / f"bin-{time.monotonic_ns()}"
    bin_dir.mkdir()
    for tool in tools:
        # python3 may be a shell shim (pyenv): use the real interpreter.
        found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        assert found, f"{tool} is needed for this test"
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


#: What every check needs besides its probe tool.
BASE_TOOLS = ["sleep", "date", "sed", "tail", "tr", "wc", "grep", "awk", "timeout", "ps"]


# --------------------------------------------------------------------------- checks

@pytest.mark.e2e
@needs_dash
@pytest.mark.parametrize("tools", [None, ["python3"], ["bash"]],
                         ids=["default", "python3", "bash"])
def test_tcp_slow_starter(tmp_path: Path, tools: list[str] | None) -> None:
    """A port that opens after 0.5 s: the wait returns once it accepts, through each
    tool of the fallback chain (nc if installed, python3, bash /dev/tcp)."""
    port = free_port_block(1)
    env = {} if tools is None else {"PATH": restricted_path(tmp_path, BASE_TOOLS + tools)}
    with tcp_listener(port, 0.5):
        rc, err, took = run_sh(wait_script(rd.TCP(port=port, timeout=10)), tmp_path, env)
    assert rc == 0, err
    assert 0.4 <= took < 5


@pytest.mark.e2e
@needs_dash
def test_tcp_never_ready_fails_after_timeout(tmp_path: Path) -> None:
    """A port that never opens: exit 1 after the timeout, naming the check and error."""
    port = free_port_block(1)
    rc, err, took = run_sh(wait_script(rd.TCP(port=port, timeout=0.6, interval=0.1)), tmp_path)
    assert rc == 1
    assert f"svc: not ready within 0.600 s (tcp 127.0.0.1:{port}): connect to " \
           f"127.0.0.1:{port} failed" in err
    assert 0.5 <= took < 4


@pytest.mark.e2e
@needs_dash
def test_tcp_without_any_tool_says_so(tmp_path: Path) -> None:
    """No nc, python3 or bash: the check fails with a message naming the chain."""
    env = {"PATH": restricted_path(tmp_path, BASE_TOOLS)}
    rc, err, _ = run_sh(wait_script(rd.TCP(port=free_port_block(1), timeout=0.2)), tmp_path, env)
    assert rc == 1 and "none of nc, bash and python3 is installed" in err


@pytest.mark.e2e
@needs_dash
@pytest.mark.parametrize("tool", ["curl", "wget", "python3"])
def test_http_slow_starter_with_each_tool(tmp_path: Path, tool: str) -> None:
    """GET answers the expected status after 0.5 s (here 404, which curl -f would
    reject); the Host header reaches the server exactly."""
    if tool != "python3":  # the test's own interpreter
        _lanes.require_tool(tool)
    port = free_port_block(1)
    seen: list[str] = []
    env = {"PATH": restricted_path(tmp_path, [*BASE_TOOLS, tool])}
    check = rd.HTTP(url=f"http://127.0.0.1:{port}/health", status=404,
                    host_header="odd 'host' $x", timeout=10)
    with http_listener(port, 0.5, status=404, seen=seen):
        rc, err, took = run_sh(wait_script(check), tmp_path, env)
    assert rc == 0, err
    assert 0.4 <= took < 5
    assert "odd 'host' $x" in seen


@pytest.mark.e2e
@needs_dash
def test_http_wrong_status_fails_with_the_status(tmp_path: Path) -> None:
    """A server answering 503 when 200 is expected: fails, reporting the status."""
    port = free_port_block(1)
    check = rd.HTTP(url=f"http://127.0.0.1:{port}/", timeout=0.5, interval=0.1)
    with http_listener(port, 0.0, status=503):
        rc, err, _ = run_sh(wait_script(check), tmp_path)
    assert rc == 1 and f"GET http://127.0.0.1:{port}/: status 503" in err


@pytest.mark.e2e
@needs_dash
def test_pid_file_slow_starter_and_dead_pid(tmp_path: Path) -> None:
    """The pid file appears after 0.5 s naming a live process: ready. A pid file
    naming a process that exited: not ready, and the message says so."""
    pid_file = tmp_path / "svc.pid"
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        timer = later(0.5, lambda: pid_file.write_text(f"{sleeper.pid}\n"))
        rc, err, took = run_sh(wait_script(rd.PidFile(timeout=10), pid_file=str(pid_file)),
                               tmp_path)
        timer.join()
        assert rc == 0, err
        assert 0.4 <= took < 5
    finally:
        sleeper.kill()
        sleeper.wait()
    rc, err, _ = run_sh(wait_script(rd.PidFile(path=str(pid_file), timeout=0.3)), tmp_path)
    assert rc == 1 and f"pid {sleeper.pid} from {pid_file} is not running" in err


@pytest.mark.e2e
@needs_dash
def test_log_line_only_counts_after_the_start(tmp_path: Path) -> None:
    """A matching line from before the recorded size does not count; one appended
    0.5 s later does. A log without it fails after the timeout."""
    log = tmp_path / "a log's file.log"
    log.write_text("old: ready on port 1\n")
    check = rd.LogLine(path=str(log), pattern=r"ready on port \d+$", timeout=10)
    preamble = "\n".join(ready.offset_lines(check))

    def append() -> None:
        with open(log, "a") as f:
            f.write("new: ready on port 5432\n")

    timer = later(0.5, append)
    rc, err, took = run_sh(wait_script(check, offset='"$procmgmt_ready_offset"',
                                       preamble=preamble), tmp_path)
    timer.join()
    assert rc == 0, err
    assert 0.4 <= took < 5
    never = rd.LogLine(path=str(log), pattern="never written", timeout=0.3)
    rc, err, _ = run_sh(wait_script(never, offset='"$procmgmt_ready_offset"',
                                    preamble="\n".join(ready.offset_lines(never))),
                        tmp_path)
    assert rc == 1 and "no line matching never written in" in err


@pytest.mark.e2e
@needs_dash
def test_command_values_arrive_exactly(tmp_path: Path) -> None:
    """An argv command and its environment reach the program byte for byte (spaces,
    quotes, $, backquotes); it becomes ready once a file appears 0.5 s later. A
    failing string command reports its exit status and last output line."""
    flag = tmp_path / "up"
    odd = "it's \"$HOME\" `x` \\ a  b"
    check = rd.Command(command=[sys.executable, "-c",
                                "import os, sys; sys.exit(0 if sys.argv[1] == sys.argv[2] and "
                                "os.environ['ODD'] == sys.argv[2] and os.path.exists(sys.argv[3])"
                                " else 1)", odd, odd, str(flag)],
                       environment={"ODD": odd}, timeout=10)
    timer = later(0.5, flag.touch)
    rc, err, took = run_sh(wait_script(check), tmp_path)
    timer.join()
    assert rc == 0, err
    assert 0.4 <= took < 5
    failing = rd.Command(command="echo 'almost there'; exit 3", timeout=0.3)
    rc, err, _ = run_sh(wait_script(failing), tmp_path)
    assert rc == 1 and "exit status 3 almost there" in err


def test_notify_is_not_checkable_from_sh() -> None:
    """Notify cannot be probed from sh: no check is generated for it."""
    assert not ready.checkable(rd.Notify())
    with pytest.raises(ValueError, match="cannot be checked from sh"):
        ready.check_call(rd.Notify(), pid_file=None)


# --------------------------------------------------------------------------- generators lint

ALL_CHECKS: list[rd.Readiness] = [
    rd.TCP(port=5432), rd.HTTP(url="http://127.0.0.1:8080/a'b$c", host_header="h"),
    rd.PidFile(), rd.LogLine(path="/var/log/a b.log", pattern=r"ready \$x \d+"),
    rd.Command(command=["pg_isready", "-d", "$db"], environment={"A": "`b`"}),
    rd.Command(command="test -e /tmp/x"), rd.Notify(),
]


@pytest.mark.parametrize("check", ALL_CHECKS, ids=lambda c: c.kind)
def test_generated_scripts_are_shellcheck_and_dash_clean(tmp_path: Path,
                                                         check: rd.Readiness) -> None:
    """sysvinit and bsdrc scripts, systemd's ready script and a dependent's proxy,
    for every kind, pass shellcheck -s sh and dash -n."""
    settings = golden_settings(False)
    spec = ProcessSpec(name="db", description="db", foreground="/bin/sleep",
                       foreground_args=("100",), readiness=check)
    web = ProcessSpec(name="web", description="web", foreground="/bin/sleep",
                      foreground_args=("100",), dependencies=("db",), rank=1)
    ctx = BuildContext(settings=settings, specs={"db": spec, "web": web})
    texts = []
    for backend in (SysVInitBackend(), BSDRCBackend(), SystemdBackend(), SupervisordBackend()):
        for s in (spec, web):
            files, _ = backend.render_process(s, ctx)
            texts += [f.content for f in files
                      if f.content and f.content.startswith("#!/bin/sh")]
    if ready.checkable(check):
        assert any("procmgmt_ready_wait" in t for t in texts)
    lint(texts)


def test_systemd_notify_is_native_and_other_checks_use_exec_start_post() -> None:
    """Notify (foreground): Type=notify, NotifyAccess=main, no procmgmt NOTIFY_SOCKET,
    and the engine is told not to probe; TCP: ExecStartPost= runs bin/<name>-ready."""
    settings = golden_settings(False, "systemd")
    notify_socket = rd.notify_socket_path(settings.runtime_dir, "db")
    spec = ProcessSpec(name="db", description="db", foreground="/bin/sleep",
                       readiness=rd.Notify(timeout=45),
                       environment={"NOTIFY_SOCKET": notify_socket})
    backend = SystemdBackend()
    ctx = BuildContext(settings=settings, specs={"db": spec})
    files, extra = backend.render_process(spec, ctx)
    unit = files[0].content or ""
    assert "Type=notify\n" in unit and "NotifyAccess=main\n" in unit
    assert "TimeoutStartSec=45\n" in unit and "NOTIFY_SOCKET" not in unit
    assert extra.get("readiness_native") is True
    tcp = ProcessSpec(name="db", description="db", foreground="/bin/sleep",
                      readiness=rd.TCP(port=5432, timeout=200))
    files, extra = backend.render_process(tcp, BuildContext(settings=settings,
                                                            specs={"db": tcp}))
    unit = files[0].content or ""
    assert 'ExecStartPost=/bin/sh "%Y/../../../bin/db-ready"' in unit
    assert "TimeoutStartSec=230" in unit and "Type=simple" in unit
    assert [f.path for f in files][1:] == ["bin/db-ready"]
    assert "readiness_native" not in extra


# --------------------------------------------------------------------------- real runs

LISTENER = """
import socket, sys, time
time.sleep(float(sys.argv[2]))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
while True:
    s.accept()[0].close()
"""


def _kill_pid_file(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(path.read_text().split()[0])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.e2e
@needs_dash
def test_sysvinit_start_by_hand_returns_once_the_port_accepts(tmp_path: Path) -> None:
    """``sh script start`` of a process that listens only after 0.6 s returns after the
    port accepts; with PROCMGMT_READY_WAIT=0 (what the engine sets) it returns before.
    A process that never listens fails the start, with the message, and is stopped."""
    settings = resolve({"state_dir": str(tmp_path / "s"), "force_disable_user_change": True},
                       environ={})
    for d in (settings.runtime_dir, settings.log_dir):
        os.makedirs(d, exist_ok=True)
    port = free_port_block(1)
    spec = ProcessSpec(name="slow", description="slow", foreground=sys.executable,
                       foreground_args=("-c", LISTENER, str(port), "0.6"),
                       readiness=rd.TCP(port=port, timeout=10))
    files, _ = SysVInitBackend().render_process(
        spec, BuildContext(settings=settings, specs={"slow": spec}))
    script = tmp_path / "slow"
    script.write_text(files[0].content or "")
    pid_file = Path(spec.derived_pid_file(settings))
    try:
        proc = subprocess.run([DASH, str(script), "start"], capture_output=True, text=True,
                              timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        assert _accepts(port), "start returned before the port accepted"
        assert "slow is ready" in proc.stdout
        assert subprocess.run([DASH, str(script), "stop"], capture_output=True,
                              timeout=30, check=False).returncode == 0
        proc = subprocess.run([DASH, str(script), "start"], capture_output=True, text=True,
                              timeout=30, check=False,
                              env={**os.environ, "PROCMGMT_READY_WAIT": "0",
                                   "PROCMGMT_START_GRACE": "0"})
        assert proc.returncode == 0, proc.stderr
        assert not _accepts(port), "PROCMGMT_READY_WAIT=0 still waited"
        subprocess.run([DASH, str(script), "stop"], capture_output=True, timeout=30,
                       check=False)
    finally:
        _kill_pid_file(pid_file)
    never = ProcessSpec(name="slow", description="slow", foreground="/bin/sleep",
                        foreground_args=("30",),
                        readiness=rd.TCP(port=port, timeout=0.5, interval=0.1))
    files, _ = SysVInitBackend().render_process(
        never, BuildContext(settings=settings, specs={"slow": never}))
    script.write_text(files[0].content or "")
    try:
        proc = subprocess.run([DASH, str(script), "start"], capture_output=True, text=True,
                              timeout=30, check=False)
        assert proc.returncode == 1
        assert f"slow: not ready within 0.500 s (tcp 127.0.0.1:{port})" in proc.stderr
        assert "stopping it again" in proc.stderr
        assert not pid_file.exists()
    finally:
        _kill_pid_file(pid_file)


MODEL = '''
import sys
from procmgmt import Instance, Process
from procmgmt.readiness import TCP



def processes(settings):
    p = settings.extra_params
    db_port = str(p["db_port"])
    db = Process(name="db", foreground_process=sys.executable,
                 foreground_process_args=[p["listener"], db_port, "1.0"],
                 readiness=TCP(port=int(db_port), timeout=20))
    web = Process(name="web", foreground_process=sys.executable,
                  foreground_process_args=[p["dependent"], db_port, p["marker"]],
                  dependencies=[db])
    return {"db": Instance(db), "web": Instance(web)}
'''

#: The dependent: exits 1 (and leaves a marker) when its dependency's port is closed.
DEPENDENT = """
import socket, sys, time
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
except OSError:
    open(sys.argv[2], "a").write("started before db was ready\\n")
    sys.exit(1)
print("web up", flush=True)
time.sleep(600)
"""


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_supervisord_stateless_starts_dependent_when_dependency_is_ready(
        tmp_path: Path) -> None:
    """``procmgmt run`` (run_stateless): supervisord spawns both programs at once by
    priority; db listens only after 1 s, web exits 1 if db's port is closed when it
    starts. web's proxy waits for db's TCP check, so web never starts early."""
    model = tmp_path / "processes.py"
    model.write_text(MODEL)
    (tmp_path / "listener.py").write_text(LISTENER)
    (tmp_path / "dependent.py").write_text(DEPENDENT)
    marker = tmp_path / "early"
    db_port = free_port_block(1)
    settings = resolve({"state_dir": str(tmp_path / "s"), "force_disable_user_change": True,
                        "process_manager": "supervisord",
                        "extra_params": {"db_port": db_port, "marker": str(marker),
                                         "listener": str(tmp_path / "listener.py"),
                                         "dependent": str(tmp_path / "dependent.py")}},
                       environ={})
    m, specs = evaluate(str(model), settings)
    gen = build(m, specs, settings)
    web = gen.by_name()["web"]
    assert web.extra.get("proxy"), "a dependent of a process with readiness uses the proxy"
    act = SupervisordActivator(settings)
    code = (
        "import sys\n"
        "from procmgmt.backends.supervisord import run_stateless\n"
        "from procmgmt.manifest import load_generation\n"
        "from procmgmt.settings import resolve\n"
        f"s = resolve({{'state_dir': {settings.state_dir!r}, "
        "'force_disable_user_change': True}, environ={})\n"
        f"sys.exit(run_stateless(s, load_generation({gen.path!r})))\n")
    runner = subprocess.Popen([sys.executable, "-c", code], cwd=str(REPO),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 30
        web_log = Path(settings.log_dir) / "web.log"
        while time.monotonic() < deadline:
            if web_log.exists() and "web up" in web_log.read_text(errors="replace"):
                break
            time.sleep(0.1)
        log = web_log.read_text(errors="replace") if web_log.exists() else "(no log)"
        assert "web up" in log, log
        assert not marker.exists(), marker.read_text()
        pids = [p for p in (act.status(gen, p).pid for p in gen.processes) if p]
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=30)
        assert runner.returncode == 0, err
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        with contextlib.suppress(Exception):
            act.shutdown()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_proxy_options_follow_the_dependencies() -> None:
    """supervisord: only dependencies with an sh-checkable declaration are waited for
    (priorities order the rest); a LogLine dependency records its log size at start."""
    settings = golden_settings(False, "supervisord")
    db = ProcessSpec(name="db", description="db", foreground="/bin/db",
                     readiness=rd.LogLine(path="/l/db.log", pattern="ready"))
    cache = ProcessSpec(name="cache", description="cache", foreground="/bin/cache",
                        readiness=rd.Notify())
    web = ProcessSpec(name="web", description="web", foreground="/bin/web",
                      dependencies=("db", "cache"), rank=1)
    ctx = BuildContext(settings, {"db": db, "cache": cache, "web": web})
    opts = proxy.readiness_options(web, ctx, settings, pid_waits=False)
    assert sorted(opts["wait_ready"]) == ["db"] and opts["wait_for"] == {}
    marker = ready.log_offset_file(db, settings)
    assert opts["wait_ready"]["db"]["log_offset_file"] == marker
    assert proxy.readiness_options(db, ctx, settings, pid_waits=False)[
        "record_log_offset"] == {"/l/db.log": marker}
    assert not proxy.readiness_needs_proxy(cache, ctx)
