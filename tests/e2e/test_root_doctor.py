"""``procmgmt doctor`` reports unsafe files and changed account ids on a live system.

Each finding is made the way it happens in the field (an older version's
umask, a local user's plant, an account re-created by hand, a uid taken
meanwhile) and doctor must name it and exit 1; what the id map explains
(state of an account undeploy deleted) is a note and leaves the exit status
0. The pid-file and account cases run as root with a throw-away attacker or
unrelated account made by useradd and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_root_accounts import OTHER, SERVICE, accounts_env, ids, useradd
from tests.e2e.util import kill_leftovers

ATTACKER = "pmdocattack"

SLEEPER = '''
from procmgmt import Process

def processes(settings):
    return {"sleeper": Process(name="sleeper", foreground_process="/bin/sleep",
                               foreground_process_args=["600"])}
'''


def doctor(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``procmgmt doctor`` of ``state`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "procmgmt", "doctor", "--state-dir",
                           str(state), *extra], capture_output=True, text=True,
                          timeout=120, check=False)


def test_world_writable_paths_are_reported(tmp_path: Path) -> None:
    """A clean state dir passes; a world-writable file, directory and ancestor of the
    state dir are each named (exit 1); a sticky world-writable dir is not."""
    state = tmp_path / "parent" / "state"
    subprocess.run([sys.executable, "-m", "procmgmt", "init-state", "--state-dir",
                    str(state)], check=True, capture_output=True)
    clean = doctor(state)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no unsafe files" in clean.stdout
    loose_file = state / "lib" / "procmgmt" / "accounts.json"
    loose_file.write_text("{}")
    loose_file.chmod(0o666)
    loose_dir = state / "cache" / "shared"
    loose_dir.mkdir()
    loose_dir.chmod(0o777)
    sticky = state / "spool" / "drop"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (tmp_path / "parent").chmod(0o777)
    found = doctor(state)
    assert found.returncode == 1, found.stdout + found.stderr
    out = found.stdout
    assert "world-writable:" in out
    for path in (loose_file, loose_dir, tmp_path / "parent"):
        assert f"  {path}: " in out, out
    assert f"{sticky}:" not in out


@contextlib.contextmanager
def attacker() -> Iterator[int]:
    """A throw-away local user (useradd); deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates a user")
    with contextlib.suppress(KeyError):
        pwd.getpwnam(ATTACKER)
        pytest.skip(f"account {ATTACKER} already exists on this machine")
    subprocess.run(["useradd", "--system", "--no-create-home", ATTACKER], check=True,
                   capture_output=True)
    try:
        yield pwd.getpwnam(ATTACKER).pw_uid
    finally:
        subprocess.run(["userdel", ATTACKER], check=False, capture_output=True)
        subprocess.run(["groupdel", ATTACKER], check=False, capture_output=True)


@pytest.mark.e2e
@pytest.mark.root
def test_foreign_and_symlinked_pid_files_are_reported(tmp_path: Path) -> None:
    """A pid file of the current generation owned by another user, or replaced by a
    symlink, is reported with the process's name (exit 1)."""
    with attacker() as uid:
        state = tmp_path / "state"
        model = tmp_path / "processes.py"
        model.write_text(SLEEPER)
        base = [sys.executable, "-m", "procmgmt"]
        opts = ["--state-dir", str(state), "-P", "sysvinit", "--force-disable-user-change"]
        try:
            subprocess.run([*base, "switch", *opts, str(model)], check=True,
                           capture_output=True, timeout=120)
            pid_file = state / "run" / "sleeper.pid"
            assert pid_file.is_file()
            clean = doctor(state)
            assert clean.returncode == 0, clean.stdout + clean.stderr
            os.chown(pid_file, uid, -1)
            found = doctor(state)
            assert found.returncode == 1, found.stdout
            assert "foreign pid file:" in found.stdout
            assert f"{pid_file}: pid file of sleeper belongs to {ATTACKER}" in found.stdout
            pid = pid_file.read_text()
            os.chown(pid_file, 0, -1)
            real = tmp_path / "elsewhere.pid"
            real.write_text(pid)
            pid_file.unlink()
            pid_file.symlink_to(real)
            found = doctor(state)
            assert found.returncode == 1
            assert f"{pid_file}: pid file of sleeper is a symbolic link" in found.stdout
            pid_file.unlink()
            real.rename(pid_file)
        finally:
            subprocess.run([*base, "switch", *opts, "--undeploy"], capture_output=True,
                           check=False, timeout=120)
            kill_leftovers(str(state))


@pytest.mark.e2e
@pytest.mark.root
def test_changed_and_taken_account_ids_and_unknown_owners_are_reported() -> None:
    """After undeploy the service's state is owned by its deleted uid: a note, exit 0.
    Then: a file of a uid no account ever had is a problem; the account re-created by
    hand with another uid is named with both uids; once its uid belongs to another
    account, doctor says a redeploy will fail."""
    with accounts_env() as (env, model):
        env.run("switch", model)
        uid, _ = ids(SERVICE)
        env.run("switch", "--undeploy")
        after = env.run("doctor", check=False)
        assert after.returncode == 0, after.stdout + after.stderr
        assert (f"note: {env.state / 'lib' / SERVICE}" in after.stdout
                and f"the uid of user {SERVICE}, which procmgmt deleted" in after.stdout), \
            after.stdout

        stray = env.state / "lib" / "orphan"
        stray.write_text("x")
        unused = 3_999_999
        assert unused not in {p.pw_uid for p in pwd.getpwall()}
        os.chown(stray, unused, unused)
        found = env.run("doctor", check=False)
        assert found.returncode == 1
        assert f"{stray}: owned by uid {unused}, which no account has and procmgmt never " \
               "created" in found.stdout, found.stdout
        stray.unlink()

        useradd(SERVICE, "-u", str(uid + 100_000))
        found = env.run("doctor", check=False)
        assert found.returncode == 1
        assert f"user {SERVICE}: has uid {uid + 100_000}, but procmgmt created it with " \
               f"uid {uid}" in found.stdout, found.stdout
        subprocess.run(["userdel", SERVICE], check=True)
        subprocess.run(["groupdel", SERVICE], check=False, capture_output=True)

        useradd(OTHER, "-u", str(uid))
        found = env.run("doctor", check=False)
        assert found.returncode == 1
        assert f"user {SERVICE}: was deleted; its uid {uid} now belongs to user {OTHER}" \
            in found.stdout, found.stdout
