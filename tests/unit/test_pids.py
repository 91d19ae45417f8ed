"""The pid-file trust rule (:func:`procmgmt.pids.trusted_pid`) on real processes.

These run as any user: the processes are children of the test (same uid),
the pid files sit in a private directory (only we could have written them)
or in a world-writable one (anyone could have). The cross-user cases (a
service user naming root's process) are in tests/e2e/test_pid_trust.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt import pids
from procmgmt.pids import MARKER_DEPLOYMENT, expected_uid, group_alive, stat_fields, trusted_pid

MARKER = "/srv/state:processes"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A child carrying this deployment's marker."""
    proc = subprocess.Popen(["sleep", "600"], env={**os.environ, MARKER_DEPLOYMENT: MARKER})
    yield proc
    proc.kill()
    proc.wait()


def pid_file(directory: Path, pid: int | str, mode: int = 0o755) -> str:
    directory.mkdir(exist_ok=True)
    directory.chmod(mode)
    path = directory / "svc.pid"
    path.write_text(f"{pid}\n")
    path.chmod(0o644)
    return str(path)


def test_own_live_marked_process_is_trusted(tmp_path: Path,
                                            sleeper: subprocess.Popen[bytes]) -> None:
    verdict = trusted_pid(pid_file(tmp_path / "d", sleeper.pid), os.geteuid(), MARKER)
    assert verdict.trusted and verdict.pid == sleeper.pid, verdict


@pytest.mark.parametrize("which", ["self", "parent", "init"])
def test_procmgmt_its_ancestors_and_init_are_refused(tmp_path: Path, which: str) -> None:
    pid = {"self": os.getpid(), "parent": os.getppid(), "init": 1}[which]
    verdict = trusted_pid(pid_file(tmp_path / "d", pid), os.geteuid(), MARKER)
    assert verdict.refused, verdict
    assert "procmgmt itself or one of its ancestors" in verdict.reason
    assert not verdict.trusted


def test_a_process_without_the_marker_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != MARKER_DEPLOYMENT}
    proc = subprocess.Popen(["sleep", "600"], env=env)
    try:
        verdict = trusted_pid(pid_file(tmp_path / "d", proc.pid), os.geteuid(), MARKER)
        assert verdict.refused and "marker" in verdict.reason, verdict
        warning = verdict.warning()
        assert str(proc.pid) in warning and "svc.pid" in warning and "sleep 600" in warning
    finally:
        proc.kill()
        proc.wait()


def test_another_deployments_process_is_refused(tmp_path: Path,
                                                sleeper: subprocess.Popen[bytes]) -> None:
    verdict = trusted_pid(pid_file(tmp_path / "d", sleeper.pid), os.geteuid(), "/other:p")
    assert verdict.refused and "another deployment" in verdict.reason, verdict


def test_wrong_owner_in_a_shared_directory_is_refused(tmp_path: Path,
                                                      sleeper: subprocess.Popen[bytes]) -> None:
    """Anyone could have written a pid file in a world-writable directory: only a
    process of the service's user counts."""
    path = pid_file(tmp_path / "shared", sleeper.pid, mode=0o1777)
    assert trusted_pid(path, os.geteuid(), MARKER).trusted
    verdict = trusted_pid(path, os.geteuid() + 4242, MARKER)
    assert verdict.refused and "belongs to" in verdict.reason, verdict
    assert trusted_pid(path, None, MARKER).refused  # the user does not exist


def test_symlinked_pid_file_is_refused(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    real = pid_file(tmp_path / "d", sleeper.pid)
    link = tmp_path / "d" / "link.pid"
    link.symlink_to(real)
    verdict = trusted_pid(str(link), os.geteuid(), MARKER)
    assert verdict.refused and "symlink" in verdict.reason, verdict


def test_gone_or_missing_is_absent_not_refused(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    verdict = trusted_pid(pid_file(tmp_path / "d", dead.pid), os.geteuid(), MARKER)
    assert not verdict.trusted and not verdict.refused
    assert not trusted_pid(str(tmp_path / "none.pid"), os.geteuid(), MARKER).refused
    assert not trusted_pid(pid_file(tmp_path / "e", "junk"), os.geteuid(), MARKER).refused


def test_expected_uid() -> None:
    assert expected_uid(None) == os.geteuid()
    assert expected_uid("root") == 0
    assert expected_uid("no-such-user-procmgmt") is None


def test_group_alive_sees_a_member_that_outlives_the_leader(tmp_path: Path) -> None:
    """A stop that waits for the pid file's process only would return while its
    child (same group) still runs: the group counts until its last member is gone."""
    child_pid = tmp_path / "child"
    leader = subprocess.Popen(["sh", "-c", f'sleep 30 & echo $! > "{child_pid}"; wait'],
                              start_new_session=True)
    try:
        for _ in range(200):
            if child_pid.exists() and child_pid.read_text().strip():
                break
            time.sleep(0.01)
        child = int(child_pid.read_text())
        os.kill(leader.pid, 9)
        leader.wait()
        assert group_alive(leader.pid), "the child still runs in the group"
        os.kill(child, 9)
        for _ in range(200):
            if not group_alive(leader.pid):
                break
            time.sleep(0.01)
        assert not group_alive(leader.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leader.pid, 9)
        leader.wait()


def _zombie() -> subprocess.Popen[bytes]:
    """A process leading its own group that has exited and is not reaped yet."""
    proc = subprocess.Popen(["true"], start_new_session=True)
    for _ in range(500):
        if (stat_fields(proc.pid) or ["?"])[0] == "Z":
            return proc
        time.sleep(0.01)
    raise AssertionError("no zombie")


def test_a_group_of_zombies_is_not_alive() -> None:
    """A member its parent has not reaped holds nothing: the group counts as gone."""
    zombie = _zombie()
    try:
        os.killpg(zombie.pid, 0)  # the kernel still counts it as a member
        assert not group_alive(zombie.pid)
    finally:
        zombie.wait()


def _count_scans(monkeypatch: pytest.MonkeyPatch, took: float = 0.0) -> list[int]:
    """Count the /proc scans from now (each taking at least ``took`` seconds), with
    no scan of another test's left to reuse."""
    scans: list[int] = []
    real = os.listdir

    def counting(path: str) -> list[str]:
        if path == "/proc":
            scans.append(1)
            time.sleep(took)
        return real(path)

    monkeypatch.setattr(pids.os, "listdir", counting)
    monkeypatch.setattr(pids, "_last_scan", pids._GroupScan())
    return scans


def test_one_proc_scan_serves_every_probe_of_a_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopping many processes whose zombies linger asked /proc once per group and
    poll round (quadratic); groups already there when a scan began share it, a group
    signalled after it began counts as alive until the next scan, which comes once
    this one is stale."""
    zombies = [_zombie() for _ in range(3)]
    try:
        scans = _count_scans(monkeypatch)
        monkeypatch.setattr(pids, "GROUP_SCAN_TTL", 60.0)  # a round, however slow the machine
        signalled = time.monotonic()
        for z in zombies:
            assert not group_alive(z.pid, since=signalled)
        assert len(scans) == 1, "one scan for the round"
        later = time.monotonic()
        assert group_alive(zombies[0].pid, since=later), \
            "a group signalled after the fresh scan began is not known yet: alive"
        assert len(scans) == 1, "no scan of its own while the last one is fresh"
        monkeypatch.setattr(pids, "GROUP_SCAN_TTL", 0.0)
        last = pids._last_scan
        time.sleep(last.ended - last.began + 0.01)  # as long as it took, and then some
        assert not group_alive(zombies[0].pid, since=later)
        assert len(scans) == 2, "a stale scan is not reused: the next one answers"
        assert not group_alive(zombies[0].pid)
        assert len(scans) == 3, "without since, a scan of its own"
    finally:
        for z in zombies:
            z.wait()


def test_a_member_the_scan_missed_keeps_the_group_alive(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A /proc scan is not atomic: a child forked while it listed /proc, whose parent
    exited before its own entry was read, is seen neither live nor as a zombie.
    When the kernel still finds members the scan saw none of, the group is not
    gone (asked again, a later scan sees the child); a group the scan saw only as
    zombies is."""
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    zombie = _zombie()
    try:
        real = os.listdir

        def missing_the_sleeper(path: str) -> list[str]:
            entries = real(path)
            return [e for e in entries if e != str(sleeper.pid)] if path == "/proc" else entries

        monkeypatch.setattr(pids.os, "listdir", missing_the_sleeper)
        monkeypatch.setattr(pids, "_last_scan", pids._GroupScan())
        assert group_alive(sleeper.pid), "a member the scan did not see at all"
        assert not group_alive(zombie.pid), "only a zombie: gone"
    finally:
        sleeper.kill()
        sleeper.wait()
        zombie.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a root process of the service's "
                    "own start; run as root: python3 tasks.py test")
def test_a_root_process_of_the_services_own_start_is_trusted(tmp_path: Path) -> None:
    """The pid file is written at the fork, before the exec chain (setpriv, su)
    switches to the service's user: for that moment the pid is root's. It carries
    both markers of this very process, which procmgmt gives only that start, so
    it is the service's; a root process with another process's marker, or with
    no process name asked for, is still refused."""
    env = {**os.environ, MARKER_DEPLOYMENT: MARKER, pids.MARKER_PROCESS: "svc"}
    proc = subprocess.Popen(["sleep", "600"], env=env)
    try:
        path = pid_file(tmp_path / "shared", proc.pid, mode=0o1777)
        user = os.geteuid() + 4242  # the service's user, not root
        assert trusted_pid(path, user, MARKER, process="svc").trusted
        for other in ("other", None):
            verdict = trusted_pid(path, user, MARKER, process=other)
            assert verdict.refused and "belongs to root" in verdict.reason, verdict
    finally:
        proc.kill()
        proc.wait()


def test_a_slow_scan_serves_as_long_as_it_took(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scan of many processes takes longer than GROUP_SCAN_TTL: counted from its end,
    and for as long as it took, it still serves the round's other probes (counted
    from its beginning it was stale at once, and each probe scanned /proc again:
    quadratic in a stop of 10,000)."""
    zombie = _zombie()
    try:
        scans = _count_scans(monkeypatch, took=1.0)  # far longer than a stall between calls
        monkeypatch.setattr(pids, "GROUP_SCAN_TTL", 0.001)
        signalled = time.monotonic()
        assert not group_alive(zombie.pid, since=signalled)
        assert not group_alive(zombie.pid, since=signalled)
        assert len(scans) == 1, "the second probe of the round had to scan again"
    finally:
        zombie.wait()
