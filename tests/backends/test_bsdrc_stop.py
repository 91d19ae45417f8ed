"""bsdrc: a stop timeout (SIGTERM, wait, SIGKILL), run for real on Linux.

The generated scripts run against ``fake_rc_subr.sh`` and its daemon(8)
stand-in (a supervisor that, like daemon(8), passes SIGTERM on to its child
and exits at once). A process that ignores SIGTERM is killed after its
stop timeout, also when a supervising daemon(8) (``restart="always"``) left
it behind; one that exits on SIGTERM is stopped at once; a pid file naming a
process the script must not signal is refused. This proves the scripts
against our reading of rc.subr(8) and daemon(8), not against FreeBSD.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.backends._activation import pid_alive
from tests.backends._bsdrc_run import Scripts

pytestmark = pytest.mark.e2e

#: A foreground program that ignores SIGTERM (``/bin/sh`` is its procname).
STUBBORN = ["-c", "trap '' TERM; while :; do sleep 0.2; done"]

MODEL = f"""
from procmgmt import Process


def processes(settings):
    return {{
        "stubborn": Process(name="stubborn", foreground_process="/bin/sh",
                            foreground_process_args={STUBBORN!r}, stop_timeout=1),
        "kept": Process(name="kept", foreground_process="/bin/sh",
                        foreground_process_args={STUBBORN!r}, restart="always",
                        stop_timeout=1),
        "quick": Process(name="quick", foreground_process="/bin/sleep",
                         foreground_process_args=["1000"], stop_timeout=30),
    }}
"""


@pytest.fixture
def scripts(tmp_path: Path) -> Iterator[Scripts]:
    s = Scripts(tmp_path, MODEL)
    try:
        yield s
    finally:
        s.kill_all()


def gone(pid: int, wait: float = 2.0) -> bool:
    """``pid`` has exited (waiting up to ``wait`` seconds for its parent to reap it)."""
    deadline = time.monotonic() + wait
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_process_ignoring_sigterm_is_killed_after_its_stop_timeout(scripts: Scripts) -> None:
    pid = scripts.start("stubborn")
    result, took = scripts.stop("stubborn")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Stopping stubborn." in result.stdout
    assert "did not stop within 1 s; sending SIGKILL" in result.stderr
    assert 0.9 <= took < 15, took
    assert gone(pid)
    again, _ = scripts.stop("stubborn")
    assert again.returncode == 1 and "stubborn not running?" in again.stderr


def test_a_process_that_exits_on_sigterm_is_stopped_at_once(scripts: Scripts) -> None:
    pid = scripts.start("quick")
    result, took = scripts.stop("quick")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SIGKILL" not in result.stderr
    assert took < 15, f"stopping took {took:.1f} s of the 30-s timeout"
    assert gone(pid)


def test_the_child_a_supervising_daemon_leaves_behind_is_killed(scripts: Scripts) -> None:
    """daemon(8) -r exits on SIGTERM at once; its child, which ignores the signal
    daemon(8) passed on, is killed after the timeout all the same."""
    supervisor = scripts.start("kept")
    child = scripts.child("kept")
    assert child != supervisor
    result, took = scripts.stop("kept")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sending SIGKILL" in result.stderr
    assert 0.9 <= took < 15, took
    assert gone(supervisor) and gone(child)
    assert not scripts.pid_file("kept").exists()


def test_two_stops_at_once_both_end_and_kill_once(scripts: Scripts) -> None:
    pid = scripts.start("stubborn")
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda: results.append(scripts.stop("stubborn")[0]))
               for _ in range(2)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert time.monotonic() - began < 20
    assert len(results) == 2 and all(r.returncode == 0 for r in results), results
    assert gone(pid)


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_umask_does_not_change_the_stop(scripts: Scripts, umask: int) -> None:
    pid = scripts.start("stubborn", umask=umask)
    result = scripts.run("stubborn", "onestop", umask=umask)
    assert result.returncode == 0, result.stdout + result.stderr
    assert gone(pid)


def test_a_planted_pid_is_not_signalled(scripts: Scripts) -> None:
    """The pid file names a process of another user (here: one of ours, while the
    service runs as ``nobody``): stop refuses it, as rc.subr's stop_precmd does."""
    # Its own group, killed whole: killing the shell alone left its sleep behind.
    decoy = subprocess.Popen(["/bin/sh", "-c", "sleep 600"], start_new_session=True)
    try:
        scripts.pid_file("stubborn").parent.mkdir(parents=True, exist_ok=True)
        scripts.pid_file("stubborn").write_text(f"{decoy.pid}\n")
        with scripts.rc_conf.open("a") as conf:
            conf.write("stubborn_user=nobody\n")
        result, _ = scripts.stop("stubborn")
        assert result.returncode == 1
        assert "not trusting" in result.stderr and "not signalling it" in result.stderr
        time.sleep(0.2)
        assert decoy.poll() is None
    finally:
        os.killpg(decoy.pid, signal.SIGKILL)
        decoy.wait()


def test_a_planted_child_pid_is_not_signalled(scripts: Scripts) -> None:
    """A child pid file naming a process that is not the supervisor's child (same
    program, /bin/sh) is not signalled; the supervisor still stops."""
    supervisor = scripts.start("kept")
    child = scripts.child("kept")
    # Its own group, killed whole: killing the shell alone left its sleep behind.
    decoy = subprocess.Popen(["/bin/sh", "-c", "sleep 600"], start_new_session=True)
    try:
        (Path(scripts.settings.runtime_dir) / "kept.child.pid").write_text(f"{decoy.pid}\n")
        result, _ = scripts.stop("kept")
        assert "is not a child of" in result.stderr, result.stderr
        assert gone(supervisor)
        time.sleep(0.2)
        assert decoy.poll() is None
    finally:
        os.killpg(decoy.pid, signal.SIGKILL)
        decoy.wait()
        os.kill(child, 9)
