"""Reading s6-supervise's files directly (procmgmt.backends.s6.supervise) against s6's tools.

The decoding tests pack records as s6's ``s6_svstatus_pack`` does. The
end-to-end tests start a real ``s6-supervise`` on a service directory in the
test's tmp dir, bring it into each state (up, ready, down, wanted up while
dead, killed by a signal, running ``./finish``, paused) and compare what
procmgmt reads from the record with what ``s6-svstat`` (and ``s6-svdt``)
print for the very same record; whatever the test started is stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procmgmt.backends.s6 import supervise
from procmgmt.backends.s6.activator import S6Activator, record_status, svstat_status
from procmgmt.manifest import DeployedProcess
from tests.conftest import golden_settings
from tests.e2e.util import kill_leftovers, wait_no_leftovers

FIELDS = "up,ready,pid,wantedup,exitcode,signal"


def pack(pid: int, wstat: int, flags: int, pgid: int | None = None) -> bytes:
    """A status record as s6 writes it: 35 bytes, or 43 with a process group (s6 2.13)."""
    stamps = bytes(24)
    group = b"" if pgid is None else pgid.to_bytes(8, "big")
    return stamps + pid.to_bytes(8, "big") + group + wstat.to_bytes(2, "big") + bytes([flags])


def test_decode_both_record_layouts() -> None:
    """The 35-byte record (s6 2.11, 2.12, 2.14+) and the 43-byte one of s6 2.13 (a
    process group after the pid) decode to the same thing; any other size is not
    guessed at."""
    for record in (pack(4242, 0, 4 | 8), pack(4242, 0, 4 | 8, pgid=4242)):
        st = supervise.decode(record)
        assert st is not None
        assert (st.pid, st.up, st.ready, st.wanted_up, st.paused) == (4242, True, True, True,
                                                                      False)
        assert st.exitcode is None and st.signal is None  # up: no last death shown
    exited = supervise.decode(pack(0, 3 << 8, 4))
    assert exited is not None and not exited.up and exited.exitcode == 3 and exited.signal is None
    killed = supervise.decode(pack(0, signal.SIGKILL, 0, pgid=0))
    assert killed is not None and killed.signal == "SIGKILL" and killed.exitcode is None
    finishing = supervise.decode(pack(77, 0, 2 | 4))
    assert finishing is not None and not finishing.up and finishing.pid == 77
    assert supervise.decode(b"") is None and supervise.decode(pack(1, 0, 4)[:-1]) is None


def test_record_status_reads_as_svstat_output_does() -> None:
    """One meaning for both ways in: the record and s6-svstat's line of it."""
    proc = DeployedProcess(name="p", hash="h", path="", rank=0, extra={"notifies": True})
    cases = [(pack(42, 0, 4), "true false 42 true -1 NA"),
             (pack(42, 0, 4 | 8), "true true 42 true -1 NA"),
             (pack(0, 1 << 8, 4 | 8), "false false -1 true 1 NA"),
             (pack(0, signal.SIGSEGV, 4), "false false -1 true -1 SIGSEGV"),
             (pack(0, signal.SIGTERM, 8), "false false -1 false -1 SIGTERM")]
    for record, line in cases:
        decoded = supervise.decode(record)
        assert decoded is not None
        assert record_status(proc, decoded) == svstat_status(proc, line), line


def test_unusual_files_are_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO where the status file belongs, a symlink, a missing directory: no
    record, no supervisor, and no read that waits for a writer."""
    svc = tmp_path / "svc"
    (svc / "supervise").mkdir(parents=True)
    os.mkfifo(svc / "supervise" / "status")
    assert supervise.read_status(str(svc)) is None
    target = tmp_path / "record"
    target.write_bytes(pack(1, 0, 4))
    os.unlink(svc / "supervise" / "status")
    os.symlink(target, svc / "supervise" / "status")
    assert supervise.read_status(str(svc)) is None
    os.symlink(target, svc / "supervise" / "control")
    assert not supervise.supervised(str(svc))
    os.mkfifo(svc / "supervise" / "death_tally")
    assert supervise.death_count(str(svc)) == 0
    assert not supervise.supervised(str(tmp_path / "missing"))
    assert supervise.read_status(str(tmp_path / "missing")) is None


# --------------------------------------------------------------------------- real s6

def _require_s6() -> None:
    if not all(shutil.which(t) for t in ("s6-supervise", "s6-svstat", "s6-svc", "s6-svdt")):
        pytest.skip("s6 is not installed")
    if not supervise.direct_read():
        pytest.skip("s6 older than 2.11: the record is read through s6-svstat")


class Service:
    """A service directory under the test's tmp dir and the s6-supervise on it."""

    def __init__(self, root: Path, run: str, *, finish: str | None = None,
                 notification_fd: int | None = None) -> None:
        self.dir = root / "svc"
        self.dir.mkdir()
        for name, text in (("run", run), ("finish", finish)):
            if text is not None:
                (self.dir / name).write_text("#!/bin/sh\n" + text)
                (self.dir / name).chmod(0o755)
        if notification_fd is not None:
            (self.dir / "notification-fd").write_text(f"{notification_fd}\n")
        self.proc = subprocess.Popen(["s6-supervise", str(self.dir)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        self.wait(lambda: supervise.supervised(str(self.dir)), "supervised")

    def svc(self, *flags: str) -> None:
        subprocess.run(["s6-svc", *flags, str(self.dir)], check=True)

    def wait(self, cond: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"not {what} within {timeout:g} s"
            time.sleep(0.01)

    def record(self) -> supervise.SuperviseStatus:
        st = supervise.read_status(str(self.dir))
        assert st is not None
        return st

    def compare(self) -> tuple[supervise.SuperviseStatus, str]:
        """The record and s6-svstat's line for the same record (read before and after
        the tool ran; retried while s6-supervise changes it in between)."""
        path = self.dir / "supervise" / "status"
        for _ in range(50):
            before = path.read_bytes()
            line = subprocess.run(["s6-svstat", "-o", FIELDS, str(self.dir)], check=True,
                                  capture_output=True, text=True).stdout.strip()
            if path.read_bytes() == before:
                decoded = supervise.decode(before)
                assert decoded is not None
                return decoded, line
        raise AssertionError("the status record kept changing")

    def stop(self) -> None:
        """Down and exit (``s6-svc -dx``); SIGKILL by PID after a while."""
        if self.proc.poll() is None:
            subprocess.run(["s6-svc", "-dx", str(self.dir)], check=False)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def as_svstat(st: supervise.SuperviseStatus) -> str:
    """What s6-svstat -o up,ready,pid,wantedup,exitcode,signal prints for ``st``."""
    b = {True: "true", False: "false"}
    code = st.exitcode if st.exitcode is not None else -1
    return " ".join([b[st.up], b[st.ready], str(st.pid if st.up else -1), b[st.wanted_up],
                     str(code), st.signal or "NA"])


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Makes a supervised service in ``tmp_path``; stops it and proves nothing is left."""
    _require_s6()
    made: list[Service] = []

    def make(run: str, **kw: object) -> Service:
        made.append(Service(tmp_path, run, **kw))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for s in made:
        s.stop()
    left = wait_no_leftovers(str(tmp_path), timeout=5)
    kill_leftovers(str(tmp_path))
    assert not left, f"processes left behind: {left}"


@pytest.mark.e2e
def test_up_down_and_killed_read_as_s6_svstat_prints(service: Callable[..., Service]) -> None:
    """Up (wanted up, not ready: no notification-fd), down on request (wanted down,
    SIGTERM), killed while wanted up (SIGKILL; restarted a second later), paused and
    continued; the death tally counts as s6-svdt lists; unsupervised once it exits."""
    s = service("exec sleep 1000\n")
    s.wait(lambda: s.record().up, "up")
    st, line = s.compare()
    assert as_svstat(st) == line and st.up and st.wanted_up and st.pid > 0
    assert supervise.supervised(str(s.dir))

    assert supervise.send(str(s.dir), "d")  # as s6-svc -d writes it
    s.wait(lambda: not s.record().up, "down")
    st, line = s.compare()
    assert as_svstat(st) == line and st.signal == "SIGTERM" and not st.wanted_up

    s.svc("-u")
    s.wait(lambda: s.record().up, "up again")
    s.svc("-k")
    s.wait(lambda: not s.record().up, "killed")
    st, line = s.compare()
    assert as_svstat(st) == line
    if not st.up:  # not yet restarted (s6-supervise waits a second)
        assert st.signal == "SIGKILL" and st.wanted_up
    tally = subprocess.run(["s6-svdt", str(s.dir)], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    assert supervise.death_count(str(s.dir)) == len(tally) >= 1

    s.wait(lambda: s.record().up, "restarted after the kill")
    s.svc("-p")
    s.wait(lambda: s.record().paused, "paused")
    s.svc("-c")
    s.wait(lambda: not s.record().paused, "continued")
    s.stop()
    assert not supervise.supervised(str(s.dir)) and not supervise.send(str(s.dir), "u")


@pytest.mark.e2e
def test_ready_exit_code_and_finish_read_as_s6_svstat_prints(
        service: Callable[..., Service]) -> None:
    """Readiness through notification-fd; a run that exits 3 while wanted up: the
    exit code while ``./finish`` runs (not up, though the record holds finish's pid)
    and after it (exit 125: wanted down from then on)."""
    s = service("echo >&3\nexec sleep 1000\n", notification_fd=3,
                finish='[ "$1" = 3 ] || exit 0\nsleep 1\nexit 125\n')
    s.wait(lambda: s.record().ready, "ready")
    st, line = s.compare()
    assert as_svstat(st) == line and st.up and st.ready

    # From now on the run script exits 3 at once; ./finish then sleeps a second.
    (s.dir / "run").write_text("#!/bin/sh\nexit 3\n")
    s.svc("-k")
    s.wait(lambda: s.record().finishing and s.record().exitcode == 3, "finishing after exit 3",
           timeout=15)
    st, line = s.compare()
    assert as_svstat(st) == line and not st.up and st.pid > 0 and st.wanted_up
    s.wait(lambda: not s.record().wanted_up and s.record().pid == 0, "finished", timeout=15)
    st, line = s.compare()
    assert as_svstat(st) == line and st.exitcode == 3 and not st.finishing


@pytest.mark.e2e
def test_activator_status_same_from_the_record_and_from_s6_svstat(
        service: Callable[..., Service], monkeypatch: pytest.MonkeyPatch) -> None:
    """The activator's status of one service, read from the record and (as on an s6
    older than 2.11) through s6-svstat and s6-svdt, is the same."""
    s = service("exec sleep 1000\n")
    s.wait(lambda: s.record().up, "up")
    act = S6Activator(golden_settings(False, "s6"))
    act.scan_dir = str(s.dir.parent)
    proc = DeployedProcess(name=s.dir.name, hash="h", path="", rank=0)
    direct = act.status(None, proc)  # type: ignore[arg-type]
    monkeypatch.setattr(supervise, "direct_read", lambda: False)
    through_tools = act.status(None, proc)  # type: ignore[arg-type]
    assert direct == through_tools and direct.running and direct.pid == s.record().pid


def test_a_supervisor_that_appears_after_the_move_is_told_to_exit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The logger's s6-supervise spawned by s6-svscan just as the directory was moved
    out had no control FIFO when ``dx`` went to the others: it is told again (at
    most every RETELL s) until it exits, instead of supervising the moved dir for
    good."""
    act = S6Activator(golden_settings(False, "s6"))
    running = {"svc": False, "svc/log": True}  # the logger came up after the move
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(act, "supervised", lambda p: running[p])

    def svc(path: str, commands: str) -> None:
        sent.append((path, commands))
        running[path] = False  # it reads "dx" and exits

    monkeypatch.setattr(act, "svc", svc)
    told = {"svc": time.monotonic(), "svc/log": time.monotonic() - 1}
    assert act._still_supervised(["svc/log", "svc"], told) is True
    assert sent == [("svc/log", "dx")]
    assert act._still_supervised(["svc/log", "svc"], told) is False
    # Told a moment ago: not told again before RETELL has passed.
    running["svc/log"] = True
    assert act._still_supervised(["svc/log", "svc"], told) is True
    assert sent == [("svc/log", "dx")]
