"""Account identity as root: stable uids across undeploy, conflicts, failed switches.

Undeploy deletes the accounts procmgmt created and keeps their state. The
state stays usable only if the account comes back with the same uid/gid:
the record's id map (like NixOS's uid-map) makes it so, whatever accounts
came and went on the system in between. When the uid was taken by another
account meanwhile, the switch fails before anything is created or started,
naming that account. And a switch that fails removes the accounts it
created (before: they stayed until some later successful switch).

The service of these tests keeps a 0600 file in its state directory and
reads it back when it starts again: with another uid it cannot, which is
the failure users saw (PostgreSQL "Permission denied" on its own files).
Every account a test creates, with procmgmt or useradd, is deleted at the
end, also when it fails.
"""

from __future__ import annotations

import contextlib
import grp
import json
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.testhooks import FAIL_ENV
from tests.e2e.test_root import Env, account_names, root_env
from tests.e2e.util import kill_uid, processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.root]

SERVICE = "pmuidsvc"
NEWCOMER = "pmfailsvc"
#: Accounts made with useradd: placeholders holding uids, the unrelated account.
HOLDERS = ("pmuidhold1", "pmuidhold2")
OTHER = "pmuidother"
ALL = (SERVICE, NEWCOMER, *HOLDERS, OTHER)

MODEL = '''
import os
from procmgmt import Credentials, Group, Instance, Process, User
from procmgmt.services._common import mkdirs

# The service writes its state once (0600, as its user), then on every start reads it
# and notes the read: a start with another uid cannot read it and exits.
SCRIPT = ("if [ -e state ]; then cat state >/dev/null || exit 1; echo read >>reads; "
          "else echo mine >state && chmod 600 state; fi; exec sleep 600")


def service(settings, name, script=SCRIPT):
    data = os.path.join(settings.lib_dir, name)
    return Instance(Process(
        name=name, instance_name=name, foreground_process="/bin/sh",
        foreground_process_args=["-c", script], user=name, directory=data,
        initialize=mkdirs(data, owner=name),
        credentials=Credentials(groups={name: Group()}, users={name: User(group=name)}),
    ), data_dir=data)


def processes(settings):
    instances = {"@SERVICE@": service(settings, "@SERVICE@")}
    if settings.extra_params.get("failing"):
        # A new account for a process that exits at once: the switch fails.
        instances["@NEWCOMER@"] = service(settings, "@NEWCOMER@", "exit 1")
    return instances
'''.replace("@SERVICE@", SERVICE).replace("@NEWCOMER@", NEWCOMER)


@contextlib.contextmanager
def accounts_env(backend: str = "sysvinit") -> Iterator[tuple[Env, Path]]:
    """A root environment with the model; deletes every account of :data:`ALL`."""
    users, groups = account_names()
    clash = sorted((users | groups) & set(ALL))
    if clash:
        pytest.skip(f"accounts {', '.join(clash)} already exist on this machine")
    with root_env(backend) as env:
        model = env.root / "accounts-model.py"
        model.write_text(MODEL)
        model.chmod(0o644)
        try:
            yield env, model
        finally:
            env.run("switch", "--undeploy", check=False)
            for name in ALL:
                with contextlib.suppress(KeyError):
                    kill_uid(pwd.getpwnam(name).pw_uid)
                subprocess.run(["userdel", name], check=False, capture_output=True)
                subprocess.run(["groupdel", name], check=False, capture_output=True)


def useradd(name: str, *args: str) -> int:
    """A system account made the usual way; its uid."""
    subprocess.run(["useradd", "--system", "--no-create-home", *args, name], check=True,
                   capture_output=True)
    return pwd.getpwnam(name).pw_uid


def userdel(name: str) -> None:
    """Delete an account made by :func:`useradd` (and its namesake group)."""
    subprocess.run(["userdel", name], check=True, capture_output=True)
    subprocess.run(["groupdel", name], check=False, capture_output=True)


def ids(name: str) -> tuple[int, int]:
    """(uid, gid of the namesake group)."""
    return pwd.getpwnam(name).pw_uid, grp.getgrnam(name).gr_gid


def wait_reads(env: Env, count: int) -> list[str]:
    """The service's lines of 'read my state back', once there are ``count``."""
    import time

    reads = env.state / "lib" / SERVICE / "reads"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = reads.read_text().splitlines() if reads.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{SERVICE} did not read its state back ({reads})")


def test_account_comes_back_with_its_uid_after_undeploy() -> None:
    """Deploy (while two placeholder accounts hold the top system uids), undeploy,
    delete the placeholders and create an unrelated account with useradd (it takes
    the next uid), redeploy: the service gets its old uid and gid back and reads the
    state it wrote before. Without the id map, useradd hands out the highest free
    uid, which is no longer the old one: the service cannot read its state."""
    with accounts_env() as (env, model):
        for name in HOLDERS:
            useradd(name)
        env.run("switch", model)
        before = ids(SERVICE)
        state = env.state / "lib" / SERVICE / "state"
        assert state.stat().st_uid == before[0]
        env.run("switch", "--undeploy")
        assert SERVICE not in account_names()[0], "undeploy deletes the account"
        for name in HOLDERS:
            userdel(name)
        other = useradd(OTHER)
        assert other != before[0]
        out = env.run("switch", model).stdout
        assert ids(SERVICE) == before, out
        assert f"created user {SERVICE} (uid {before[0]})" in out
        assert wait_reads(env, 1) == ["read"]
        record = json.loads((env.state / "lib" / "procmgmt" / "accounts.json").read_text())
        assert record["ids"]["users"][SERVICE] == before[0]
        assert record["ids"]["groups"][SERVICE] == before[1]


def test_uid_taken_meanwhile_fails_before_anything_starts() -> None:
    """When an unrelated account got the service's old uid, the redeploy fails (exit 1)
    naming that account and the uid; it creates no account (not even the free group),
    starts nothing and leaves no journal."""
    with accounts_env() as (env, model):
        env.run("switch", model)
        uid, _ = ids(SERVICE)
        env.run("switch", "--undeploy")
        useradd(OTHER, "-u", str(uid))
        groups_before = account_names()[1]
        proc = env.run("switch", model, check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert (f"user {SERVICE} needs uid {uid}" in proc.stderr
                and f"now belongs to user {OTHER}" in proc.stderr), proc.stderr
        assert "Traceback" not in proc.stderr
        assert SERVICE not in account_names()[0]
        assert account_names()[1] == groups_before
        assert "starting" not in proc.stdout
        assert processes_mentioning(str(env.state / "lib" / SERVICE)) == []
        doctor = env.run("doctor", check=False).stdout
        assert "journal" not in doctor


@pytest.mark.parametrize("backend", ["sysvinit", "supervisord"])
def test_failed_switch_removes_the_accounts_it_created(backend: str) -> None:
    """A switch that adds a process with a new user, which then fails, deletes that
    user and its group in its undo; the previous generation's account and process
    stay."""
    with accounts_env(backend) as (env, model):
        env.run("switch", model)
        before = ids(SERVICE)
        pid = env.pids()[SERVICE]
        proc = env.run("switch", model, "--extra-params",
                       json.dumps({"port_base": env.base, "failing": True}), check=False)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"created user {NEWCOMER}" in proc.stdout
        assert f"deleted user {NEWCOMER}" in proc.stdout
        users, groups = account_names()
        assert NEWCOMER not in users and NEWCOMER not in groups
        assert ids(SERVICE) == before
        assert env.pids()[SERVICE] == pid, "the previous generation keeps running"
        record = json.loads((env.state / "lib" / "procmgmt" / "accounts.json").read_text())
        assert NEWCOMER not in record["users"] and NEWCOMER not in record["groups"]


@pytest.mark.parametrize("backend", ["sysvinit", "supervisord"])
def test_switch_failing_before_its_journal_removes_the_accounts_it_created(
        backend: str) -> None:
    """A failure after the accounts were made but before anything changed what runs
    (preparing the pid dirs and logs, where a planted symlink fails a switch) deletes
    the new account: no journal, nothing restored, no account left for later."""
    with accounts_env(backend) as (env, model):
        env.run("switch", model)
        pid = env.pids()[SERVICE]
        proc = env.run("switch", model, "--extra-params",
                       json.dumps({"port_base": env.base, "failing": True}), check=False,
                       extra_env={FAIL_ENV: "files"})
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, out
        assert f"injected failure ({FAIL_ENV}=files)" in proc.stderr, out
        assert f"created user {NEWCOMER}" in proc.stdout, out
        assert f"deleted user {NEWCOMER}" in proc.stdout, out
        assert "restoring" not in proc.stdout, out
        users, groups = account_names()
        assert NEWCOMER not in users and NEWCOMER not in groups
        assert env.pids()[SERVICE] == pid, "the previous generation keeps running"
        record = json.loads((env.state / "lib" / "procmgmt" / "accounts.json").read_text())
        assert NEWCOMER not in record["users"] and NEWCOMER not in record["groups"]
        assert "nothing to repair" in env.run("repair").stdout
