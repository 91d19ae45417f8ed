"""The liveness wrapper (``procmgmt.backends.shared.liveness``) run for real with
dash, and what each backend does with a liveness declaration. A hung server
restarted by real managers is tests/e2e/test_liveness.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from procmgmt.backends import backend_names, get_backend
from procmgmt.backends.base import Support
from procmgmt.backends.shared.liveness import wrapper
from procmgmt.backends.table import lifecycle_table
from procmgmt.readiness import Command, Liveness, PidFile


def start(tmp_path: Path, live: Liveness, *command: str) -> subprocess.Popen[str]:
    script = tmp_path / "liveness"
    script.write_text(wrapper("svc", live, pid_file=str(tmp_path / "svc.pid")))
    return subprocess.Popen(["dash", str(script), *command], stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def stop(proc: subprocess.Popen[str]) -> None:
    """End the whole session (program, watcher, its sleep)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_the_program_keeps_the_wrappers_pid_and_a_passing_check_leaves_it(
        tmp_path: Path) -> None:
    (tmp_path / "ok").touch()
    live = Liveness(Command(command=["test", "-e", str(tmp_path / "ok")]), period=0.1,
                    failures=1)
    proc = start(tmp_path, live, "dash", "-c", 'echo "$$" > "$0"; sleep 2', str(tmp_path / "p"))
    try:
        assert proc.wait(timeout=10) == 0, "a passing check killed the program"
        assert (tmp_path / "p").read_text().strip() == str(proc.pid), "exec did not keep the pid"
    finally:
        stop(proc)


def test_failing_checks_in_a_row_kill_the_program_and_say_why(tmp_path: Path) -> None:
    flag = tmp_path / "alive"
    flag.touch()
    live = Liveness(Command(command=["test", "-e", str(flag)]), period=0.2, failures=3,
                    delay=0.2)
    proc = start(tmp_path, live, "sleep", "30")
    try:
        time.sleep(0.8)
        assert proc.poll() is None, "killed while the check passed"
        flag.unlink()
        began = time.monotonic()
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert time.monotonic() - began < 5
        err = proc.stderr.read() if proc.stderr else ""
        assert "svc: liveness check failed (1 of 3 in a row; command" in err
        assert "(3 of 3 in a row" in err and "(4 of" not in err
        assert f"svc: not alive: killing pid {proc.pid} (SIGKILL)" in err
    finally:
        stop(proc)


def test_a_recovered_check_starts_counting_again(tmp_path: Path) -> None:
    """Failures count only in a row: one pass resets the count."""
    flag = tmp_path / "alive"
    script = tmp_path / "flip"
    # Fails every second probe: never two failures in a row.
    script.write_text(f'if [ -e {flag} ]; then rm {flag}; exit 1; else touch {flag}; fi\n')
    live = Liveness(Command(command=["dash", str(script)]), period=0.1, failures=2)
    proc = start(tmp_path, live, "sleep", "1.5")
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)


def test_the_watcher_ends_with_the_program(tmp_path: Path) -> None:
    """The watcher is a forked subshell: its argv is still the wrapper's, so it is
    found by the wrapper's path; it must be gone soon after the program ends."""
    live = Liveness(PidFile(path=str(tmp_path / "none.pid")), period=5)
    proc = start(tmp_path, live, "sleep", "0.5")
    wrapper_path = str(tmp_path / "liveness").encode()
    try:
        time.sleep(0.2)
        assert _mentioning(wrapper_path), "no watcher is running"
        assert proc.wait(timeout=10) == 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _mentioning(wrapper_path):
            time.sleep(0.1)
        assert _mentioning(wrapper_path) == [], "the watcher outlived its program"
    finally:
        stop(proc)


def _mentioning(text: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if text in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("backend", backend_names())
def test_every_backend_declares_liveness_and_the_table_shows_it(backend: str) -> None:
    support = get_backend(backend).capabilities.lifecycle.liveness
    assert support in (Support.NATIVE, Support.EMULATED, Support.REFUSED,
                       Support.NOT_APPLICABLE)
    row = [line for line in lifecycle_table([backend]).splitlines()[1:]]
    assert row and row[0].rstrip().endswith(support.value)


def test_as_sh_c_text_with_awkward_quoting_in_the_check(tmp_path: Path) -> None:
    """The init scripts run the wrapper as ``sh -c TEXT NAME COMMAND...``; a check whose
    words hold quotes, ``$`` and backslashes reaches the probe unchanged."""
    odd = tmp_path / "it's $HOME `id` \\ x"
    odd.touch()
    live = Liveness(Command(command=["test", "-e", str(odd)], environment={"Q": "a'b$c"}),
                    period=0.1, failures=2)
    text = wrapper("svc", live, pid_file=None)
    proc = subprocess.Popen(["dash", "-c", text, "svc", "sleep", "30"], stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        time.sleep(0.8)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        odd.unlink()
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        stop(proc)
