"""bsdrc: log rotation by size (--log-max-bytes, --log-backups) of the log files
daemon(8) writes for foreground processes.

With rotation on, daemon(8) ``-o`` writes into a fifo and the generated log
writer program (the shared rotating writer of ``backends/sh/log_writer.sh``)
writes the log file, as the sysvinit scripts do. The scripts run for real
against ``fake_rc_subr.sh`` and its daemon(8) stand-in; that proves them
against our reading of rc.subr(8) and daemon(8), not against FreeBSD.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backends._bsdrc_run import Scripts
from tests.backends.test_bsdrc import lint
from tests.conftest import golden_settings

#: 300 numbered lines of 21 bytes, then quiet (SIGTERM ends it).
CHATTY = ["-c", "seq -f 'line %g of the log..' 100 399; while :; do sleep 1; done"]

MODEL = f"""
from procmgmt import Process


def processes(settings):
    return {{
        "chatty": Process(name="chatty", foreground_process="/bin/sh",
                          foreground_process_args={CHATTY!r}),
        "kept": Process(name="kept", foreground_process="/bin/sh",
                        foreground_process_args={CHATTY!r}, restart="always",
                        stop_timeout=5),
        "own": Process(name="own", daemon="/usr/sbin/food", daemon_args=["-d"]),
    }}
"""

MAX_BYTES = 1000
BACKUPS = 2


@pytest.fixture
def scripts(tmp_path: Path) -> Iterator[Scripts]:
    s = Scripts(tmp_path, MODEL, log_max_bytes=MAX_BYTES, log_backups=BACKUPS)
    try:
        yield s
    finally:
        s.kill_all()


def log_file(scripts: Scripts, name: str) -> Path:
    return Path(str(scripts.settings.log_dir)) / f"{name}.log"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def text(path: Path) -> str:
    """``path``'s text, or "" while the writer rotates it away."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def writer_pids(scripts: Scripts, name: str) -> list[int]:
    """Processes running ``name``'s log writer program."""
    program = str(scripts.store(name) / f"libexec/{name}-log-writer")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if program.encode() in cmdline:
            found.append(int(entry))
    return found


def rotated(scripts: Scripts, name: str) -> list[Path]:
    log = log_file(scripts, name)
    return [p for p in (log, *(Path(f"{log}.{i}") for i in range(1, BACKUPS + 2)))
            if p.exists()]


def test_only_foreground_logs_rotate_through_the_writer(tmp_path: Path) -> None:
    """The daemon(8) of a foreground process writes into the writer's fifo and the
    store entry carries the writer program (linted like the scripts); a daemon
    writes its own logs; without the setting nothing changes."""
    s = Scripts(tmp_path, MODEL, log_max_bytes=MAX_BYTES, log_backups=BACKUPS)
    chatty = s.scripts["chatty"].read_text()
    log = log_file(s, "chatty")
    assert f"\t    -o \\\n\t    {log}.fifo \\\n" in chatty
    assert 'procmgmt_start_log_writer "$procmgmt_root/libexec/chatty-log-writer"' in chatty
    writer = s.store("chatty") / "libexec/chatty-log-writer"
    assert stat.S_IMODE(writer.stat().st_mode) == 0o755
    lint(s.scripts["chatty"], writer, s.scripts["kept"])
    assert "log_writer" not in s.scripts["own"].read_text()
    assert not (s.store("own") / "libexec").exists()

    plain = tmp_path / "plain"
    plain.mkdir()
    p = Scripts(plain, MODEL)
    plain_text = p.scripts["chatty"].read_text()
    assert f"\t    -o \\\n\t    {log_file(p, 'chatty')} \\\n" in plain_text
    assert "procmgmt_start_log_writer" not in plain_text
    assert not (p.store("chatty") / "libexec").exists()


def test_golden_settings_have_no_rotation() -> None:
    """The golden trees are generated without --log-max-bytes (so they did not change)."""
    assert golden_settings(False, "bsdrc").log_rotation() is None


@pytest.mark.e2e
@pytest.mark.parametrize("umask", [None, 0o000, 0o077])
def test_the_log_rotates_by_size_and_keeps_the_backups(scripts: Scripts,
                                                       umask: int | None) -> None:
    scripts.start("chatty", umask=umask)
    log = log_file(scripts, "chatty")
    wait_for(lambda: Path(f"{log}.{BACKUPS}").exists() and "line 399" in text(log),
             "the log did not rotate")
    files = rotated(scripts, "chatty")
    assert files == [log, Path(f"{log}.1"), Path(f"{log}.2")], files
    for f in files:
        assert f.stat().st_size <= MAX_BYTES + 20, (f, f.stat().st_size)
        # daemon(8) creates its output file 0600; the writer does the same, whatever the umask.
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    kept = "".join(f.read_text() for f in reversed(files)).splitlines()
    # The newest lines, in order, none lost between the kept files.
    assert kept == [f"line {i} of the log.." for i in range(400 - len(kept), 400)]
    assert not Path(f"{log}.fifo").exists()
    assert writer_pids(scripts, "chatty")

    result, _ = scripts.stop("chatty")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: not writer_pids(scripts, "chatty"), "the log writer outlived the process",
             timeout=10)


@pytest.mark.e2e
def test_the_log_of_a_restarted_process_goes_on_rotating(scripts: Scripts) -> None:
    """Under a supervising daemon(8) the log goes through the same writer across
    restarts; stopping the supervisor ends the writer."""
    scripts.start("kept")
    log = log_file(scripts, "kept")
    wait_for(lambda: "line 399" in text(log), "no output")
    first = scripts.child("kept")
    killed = time.time()
    os.kill(first, 9)
    wait_for(lambda: scripts.child_or_none("kept") not in (None, first),
             "daemon(8) did not restart the process")
    wait_for(lambda: log.exists() and log.stat().st_mtime > killed and text(log).endswith(
        "line 399 of the log..\n"), "the restarted process's output was not written")
    assert len(rotated(scripts, "kept")) == BACKUPS + 1
    assert len(writer_pids(scripts, "kept")) == 1
    result, _ = scripts.stop("kept")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: not writer_pids(scripts, "kept"), "the log writer outlived daemon(8)",
             timeout=10)


@pytest.mark.e2e
def test_the_writer_runs_as_the_user_through_su(scripts: Scripts) -> None:
    """With <name>_user the writer starts through su, as rc.subr starts daemon(8)
    (PROCMGMT_FAKE_SU: the stand-in su runs the command string without switching,
    so this checks the string, not the switch)."""
    with scripts.rc_conf.open("a") as conf:
        conf.write("chatty_user=nobody\n")
    scripts.env["PROCMGMT_FAKE_SU"] = "1"
    scripts.start("chatty")
    log = log_file(scripts, "chatty")
    wait_for(lambda: Path(f"{log}.1").exists(), "the log did not rotate")


@pytest.mark.e2e
def test_a_daemon_that_never_opens_the_fifo_does_not_leave_the_writer(scripts: Scripts
                                                                      ) -> None:
    """The writer's watchdog ends it when daemon(8) never opens the fifo (here the
    writer is started by hand, its wait shortened to 1 s, and nothing writes)."""
    log = log_file(scripts, "chatty")
    writer = scripts.store("chatty") / "libexec/chatty-log-writer"
    proc = subprocess.Popen([str(writer), f"{log}.fifo", str(log), "1000", "1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "PROCMGMT_LOG_FIFO_WAIT": "10"})
    try:
        assert proc.wait(timeout=30) == 0
        assert not Path(f"{log}.fifo").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
