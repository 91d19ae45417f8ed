"""Root deployments for real: accounts created and deleted across switches, and every
process running as its own user, with sysvinit, supervisord and runit.

The webapps example is deployed as root with user changes allowed: each
webapp runs as the user and group named after it, which procmgmt creates
before starting it and deletes (when it created it) once a switch no longer
needs it. The acceptance scenario (deploy, upgrade, rollback, undeploy)
checks the accounts and each process's real and effective ids in
/proc/<pid>/status at every step. The same model with
--force-disable-user-change must run everything as root and leave
/etc/passwd and /etc/group byte for byte as they were.

The service users must be able to execute the interpreter and read the
example: the repo venv may live under a 0700 home, so procmgmt and the
webapps run on Debian's /usr/bin/python3 from a world-readable copy of the
package under /tmp (every ancestor 0755). Every account a test sees appear
is removed at the end, also when it fails.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import _lanes
from tests.e2e.util import (
    REPO,
    free_port_block,
    is_own_account,
    kill_leftovers,
    kill_uid,
    port_closed,
    wait_http,
    wait_no_leftovers,
)

pytestmark = [pytest.mark.e2e, pytest.mark.root("creates users and groups and switches to them")]

BACKENDS = ["sysvinit", "supervisord",
            pytest.param("runit", marks=pytest.mark.requires_tool("runsvdir")),
            pytest.param("s6", marks=pytest.mark.requires_tool("s6-svscan"))]
NAMES = ["webapp", *(f"webapp{i}" for i in range(1, 7))]
#: The service of the initialize test (a name no real system uses).
SERVICE = "pmrootsvc"
#: Every account a test here may create (and so removes at the end).
ALL_NAMES = {*NAMES, SERVICE}


def account_names() -> tuple[set[str], set[str]]:
    """(user names, group names) as NSS sees them now, but those that tests running
    beside this one create and delete for themselves (``is_own_account``)."""
    return ({p.pw_name for p in pwd.getpwall() if not is_own_account(p.pw_name)},
            {g.gr_name for g in grp.getgrall() if not is_own_account(g.gr_name)})


@dataclass
class Env:
    """A world-readable procmgmt tree, a private state dir and how to run the CLI."""

    root: Path
    state: Path
    python: str
    pythonpath: str
    backend: str
    base: int

    @property
    def examples(self) -> Path:
        return self.root / "tree" / "examples" / "webapps"

    def run(self, *args: str | Path, unprivileged: bool = False,
            check: bool = True,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """procmgmt as root on Debian's python, without --force-disable-user-change
        unless ``unprivileged``; ``extra_env`` adds environment variables (test hooks)."""
        argv = [self.python, "-m", "procmgmt", str(args[0]), "--state-dir", str(self.state),
                "-P", self.backend, "--extra-params", json.dumps({"port_base": self.base}),
                *(["--force-disable-user-change"] if unprivileged else []),
                *[str(a) for a in args[1:]]]
        env = {**os.environ, "PYTHONPATH": self.pythonpath, **(extra_env or {})}
        env.pop("PROCMGMT_FORCE_DISABLE_USER_CHANGE", None)
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180,
                              cwd=self.root, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"procmgmt {args[0]} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def pids(self) -> dict[str, int | None]:
        """name -> pid of the current generation (``status --json``)."""
        out = self.run("status", "--json", check=False).stdout
        return {p["name"]: p["pid"] for p in json.loads(out)["processes"]}


def readable_tree(root: Path) -> str:
    """Copy procmgmt, supervisor and the examples under ``root`` (0755/0644); PYTHONPATH."""
    import supervisor

    tree = root / "tree"
    shutil.copytree(REPO / "src" / "procmgmt", tree / "lib" / "procmgmt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(Path(supervisor.__file__).parent, tree / "lib" / "supervisor",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "examples", tree / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, _, filenames in os.walk(tree):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            os.chmod(p, 0o755 if os.access(p, os.X_OK) else 0o644)
    return str(tree / "lib")


@contextlib.contextmanager
def root_env(backend: str) -> Iterator[Env]:
    """The environment of one test; removes processes, accounts and files afterwards."""
    python = _lanes.require_system_python()
    users_before, groups_before = account_names()
    clash = sorted((users_before | groups_before) & ALL_NAMES)
    if clash:
        pytest.skip(f"accounts {', '.join(clash)} already exist on this machine; the test "
                    "needs to create and delete them")
    root = Path(tempfile.mkdtemp(prefix=f"procmgmt-root-{backend}-", dir="/tmp"))
    root.chmod(0o755)
    parent = root.parent
    while parent != parent.parent:
        assert os.stat(parent).st_mode & 0o001, f"{parent} is not traversable by other users"
        parent = parent.parent
    state = root / "state"
    state.mkdir(mode=0o755)
    env = Env(root, state, python, readable_tree(root), backend, free_port_block(7))
    try:
        yield env
    finally:
        with contextlib.suppress(Exception):
            env.run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
        users_now, groups_now = account_names()
        for name in sorted((users_now - users_before) & ALL_NAMES):
            kill_uid(pwd.getpwnam(name).pw_uid)
            subprocess.run(["userdel", name], check=False, capture_output=True)
        for name in sorted((groups_now - groups_before) & ALL_NAMES):
            subprocess.run(["groupdel", name], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def ids_of(pid: int) -> tuple[list[int], list[int]]:
    """(Uid fields, Gid fields) of /proc/<pid>/status: real, effective, saved, fs."""
    fields: dict[str, list[int]] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid"):
                fields[key] = [int(v) for v in value.split()]
    return fields["Uid"], fields["Gid"]


def assert_runs_as_own_user(env: Env, names: list[str]) -> dict[str, int | None]:
    """Each named process runs with its own user's uid and its group's gid (all four
    ids); returns the pids."""
    pids = env.pids()
    for name in names:
        pid = pids.get(name)
        assert pid, f"{name} has no pid: {pids}"
        pw = pwd.getpwnam(name)
        uids, gids = ids_of(pid)
        assert uids == [pw.pw_uid] * 4, f"{name} (pid {pid}) runs with uids {uids}"
        assert gids == [grp.getgrnam(name).gr_gid] * 4, f"{name} (pid {pid}) gids {gids}"
        assert pw.pw_gid == grp.getgrnam(name).gr_gid
    return pids


def assert_accounts(present: list[str], absent: list[str]) -> None:
    """Users and groups of ``present`` exist; those of ``absent`` do not."""
    users, groups = account_names()
    for name in present:
        assert name in users and name in groups, f"account {name} is missing"
    for name in absent:
        assert name not in users, f"user {name} still exists"
        assert name not in groups, f"group {name} still exists"


@pytest.mark.parametrize("backend", BACKENDS)
def test_accounts_follow_the_generations(backend: str) -> None:
    """Deploy, upgrade, roll back and undeploy as root: accounts are created before
    their processes start and deleted after a switch drops them; every process runs
    as its own user; files of a deleted user and the state dirs stay."""
    with root_env(backend) as env:
        simple, advanced = env.examples / "processes.py", env.examples / "processes-advanced.py"
        base = env.base

        out = env.run("switch", simple).stdout
        assert "created user webapp " in out and "created group webapp1 " in out
        assert_accounts(["webapp", "webapp1"], [f"webapp{i}" for i in range(2, 7)])
        for port in (base, base + 1):
            assert f"listening on port: {port}" in wait_http(port)
        first = assert_runs_as_own_user(env, ["webapp", "webapp1"])
        record = json.loads((env.state / "lib" / "procmgmt" / "accounts.json").read_text())
        assert sorted(record["users"]) == ["webapp", "webapp1"]
        if backend == "sysvinit":
            # The daemon, already running as its user, wrote its pid file: it lives in
            # its own directory (owned by that user, 0755) inside a root-owned parent,
            # never in a sticky shared dir where others could plant it.
            pid_file = env.state / "run" / "procmgmt-pid" / "webapp" / "webapp.pid"
            assert int(pid_file.read_text()) == first["webapp"]
            assert pid_file.stat().st_uid == pwd.getpwnam("webapp").pw_uid
            own = pid_file.parent.stat()
            assert (own.st_uid, own.st_mode & 0o7777) == (pwd.getpwnam("webapp").pw_uid, 0o755)
            parent = pid_file.parent.parent.stat()
            assert (parent.st_uid, parent.st_mode & 0o7777) == (0, 0o755)
        # A file the service user owns: deleting the user must not delete it.
        data = env.state / "lib" / "webapp-data"
        data.mkdir()
        old_uid = pwd.getpwnam("webapp").pw_uid
        os.chown(data, old_uid, grp.getgrnam("webapp").gr_gid)

        out = env.run("switch", "--replace", advanced).stdout
        assert_accounts([f"webapp{i}" for i in range(1, 7)], ["webapp"])
        assert out.index("created user webapp2") < out.index("starting webapp2")
        assert out.index("stopping webapp") < out.index("deleted user webapp ")
        assert port_closed(base)
        for i in range(1, 7):
            assert f"listening on port: {base + i}" in wait_http(base + i)
        second = assert_runs_as_own_user(env, [f"webapp{i}" for i in range(1, 7)])
        assert second["webapp1"] == first["webapp1"], "the unchanged instance was restarted"
        assert data.is_dir() and data.stat().st_uid == old_uid, "the user's files must stay"

        out = env.run("switch", "--rollback").stdout
        assert "switched to generation 1" in out
        assert_accounts(["webapp", "webapp1"], [f"webapp{i}" for i in range(2, 7)])
        assert f"listening on port: {base}" in wait_http(base)
        assert_runs_as_own_user(env, ["webapp", "webapp1"])

        env.run("switch", "--undeploy")
        assert_accounts([], NAMES)
        for i in range(7):
            assert port_closed(base + i)
        assert wait_no_leftovers(str(env.state)) == []
        record = json.loads((env.state / "lib" / "procmgmt" / "accounts.json").read_text())
        assert record["users"] == {} and record["groups"] == {}
        for d in ("log", "tmp", "run", "lib"):
            assert (env.state / d).is_dir(), f"state directory {d} was removed"
        assert data.is_dir()


def account_lines() -> dict[str, set[str]]:
    """The lines of /etc/passwd and /etc/group."""
    return {f: set(Path(f).read_text().splitlines()) for f in ("/etc/passwd", "/etc/group")}


def changed_names(before: dict[str, set[str]]) -> set[str]:
    """Names of the passwd/group lines added or removed since ``before``."""
    now = account_lines()
    return {line.split(":", 1)[0] for f in before for line in before[f] ^ now[f]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_user_changes_disabled_as_root_touches_no_account(backend: str) -> None:
    """With --force-disable-user-change every process runs as root and no line of
    /etc/passwd or /etc/group changes for the model's accounts, through deploy,
    upgrade and undeploy. (Lines are compared by account rather than the files
    byte for byte: tests of other services may add their own accounts meanwhile.)"""
    with root_env(backend) as env:
        before = account_lines()
        env.run("switch", env.examples / "processes.py", unprivileged=True)
        assert f"listening on port: {env.base}" in wait_http(env.base)
        env.run("switch", "--replace", env.examples / "processes-advanced.py", unprivileged=True)
        for i in range(1, 7):
            wait_http(env.base + i)
        pids = env.pids()
        for name in (f"webapp{i}" for i in range(1, 7)):
            pid = pids[name]
            assert pid is not None, name
            uids, gids = ids_of(pid)
            assert uids == [0] * 4 and gids == [0] * 4, f"{name} runs as {uids}/{gids}"
        assert changed_names(before) & set(NAMES) == set()
        env.run("switch", "--undeploy", unprivileged=True)
        assert changed_names(before) & set(NAMES) == set()
        assert not (env.state / "lib" / "procmgmt" / "accounts.json").exists()
        assert wait_no_leftovers(str(env.state)) == []


INIT_MODEL = f'''
import os
from procmgmt import Credentials, Group, Instance, Process, User
from procmgmt.services._common import mkdirs

def processes(settings):
    name = "{SERVICE}"
    data = os.path.join(settings.lib_dir, name, "data")
    user = None if settings.force_disable_user_change else name
    return {{name: Instance(Process(
        name=name, instance_name=name, foreground_process="/bin/sleep",
        foreground_process_args=["600"], user=user,
        initialize=mkdirs(os.path.dirname(data), data, owner=user),
        credentials=Credentials(groups={{name: Group()}}, users={{name: User(group=name)}}),
    ), data_dir=data)}}
'''


@pytest.mark.parametrize("backend", BACKENDS)
def test_initialize_runs_as_root_then_the_process_drops_to_its_user(backend: str) -> None:
    """initialize creates the state directory inside a root-only directory (so it ran
    as root), owned by the service user with mode 0750; then the process runs as that
    user (sysvinit: setpriv in the init script; supervisord: the foreground proxy,
    which also uses setpriv, because supervisord's user= would run initialize as the
    user too)."""
    with root_env(backend) as env:
        model = env.root / "init-model.py"
        model.write_text(INIT_MODEL)
        model.chmod(0o644)
        env.run("switch", model)
        data = env.state / "lib" / SERVICE / "data"
        pw = pwd.getpwnam(SERVICE)
        for d in (data.parent, data):
            st = d.stat()
            assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), d
            assert st.st_mode & 0o7777 == 0o750, f"{d}: mode {st.st_mode & 0o7777:o}"
        assert (env.state / "lib").stat().st_uid == 0
        pid = env.pids()[SERVICE]
        assert pid is not None
        assert ids_of(pid) == ([pw.pw_uid] * 4, [pw.pw_gid] * 4)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:2] == [b"/bin/sleep", b"600"]
        env.run("switch", "--undeploy")
        assert_accounts([], [SERVICE])
        assert data.is_dir(), "the state directory must stay after undeploy"


def test_run_creates_the_accounts_and_removes_them_on_exit() -> None:
    """``procmgmt run`` as root: the model's users exist while it runs (supervisord
    could not start a program as an unknown user: "Invalid user name webapp"), each
    webapp runs as its own user, and SIGTERM ends the run and deletes the accounts."""
    import signal
    import time

    from procmgmt.testing import processes_mentioning

    with root_env("supervisord") as env:
        argv = [env.python, "-m", "procmgmt", "run", "--state-dir", str(env.state),
                "--extra-params", json.dumps({"port_base": env.base}),
                str(env.examples / "processes.py")]
        penv = {**os.environ, "PYTHONPATH": env.pythonpath}
        penv.pop("PROCMGMT_FORCE_DISABLE_USER_CHANGE", None)
        log = env.root / "run.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=penv,
                                    cwd=env.root, start_new_session=True)
        try:
            for port in (env.base, env.base + 1):
                try:
                    wait_http(port, timeout=30)
                except Exception as exc:
                    raise AssertionError(f"{exc}\n{log.read_text()}") from None
            assert_accounts(["webapp", "webapp1"], [])
            owners = {pwd.getpwuid(ids_of(pid)[0][0]).pw_name
                      for pid in processes_mentioning(str(env.state))
                      if "webapp.py" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")}
            assert owners == {"webapp", "webapp1"}, owners
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not port_closed(env.base):
            time.sleep(0.1)
        assert_accounts([], ["webapp", "webapp1"])
        text = log.read_text()
        assert "created user webapp" in text and "deleted user webapp" in text, text
