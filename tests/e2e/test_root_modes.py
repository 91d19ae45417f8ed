"""The modes of everything a root deployment creates do not depend on the umask.

The webapps example goes through its whole lifecycle as root with user
switching (deploy, upgrade, rollback, undeploy; sysvinit, supervisord, runit and s6),
once with umask 000 and once with umask 077. The state dir is two levels
below an existing directory, so procmgmt also creates its parents. After
every step the test walks everything below that directory and checks each
path against the rule for its kind (:func:`expected`): an exact mode and
owner for what procmgmt itself creates, "not writable by group or others"
for what the services create, and an error for any path no rule explains,
so a new kind of file gets a rule before it gets a mode by accident.

Before the fix: under umask 000 ``accounts.json`` was 0666 (a local user
adds an entry, root's next switch deletes that account), the parents of
the state dir 0777 and supervisord's log 0666; under umask 077 the parents
came out 0700 and the services, running as their users, could not reach
their directories: the deploy failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.test_root import BACKENDS, NAMES, Env, root_env
from tests.e2e.util import wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.root]

ROOT = 0
#: Records, journals and locks of procmgmt (below LIB/procmgmt): root only.
PRIVATE_NAMES = ("accounts.json", "accounts.json.lock", "store.lock", "external.json")
PRIVATE_SUFFIXES = (".lock", ".journal", ".journal.stops", ".last-switch.json")


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    """This process's umask (inherited by the procmgmt commands it runs)."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def service_uids(state: Path) -> set[int]:
    """uids of the example's accounts: those existing now and those recorded."""
    uids = set()
    for name in NAMES:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((state / "lib" / "procmgmt" / "accounts.json").read_text())
        uids |= set((record.get("ids") or {}).get("users", {}).values())
    return uids


def expected(rel: tuple[str, ...], st: os.stat_result, services: set[int]) -> str | None:
    """None when ``rel`` (path parts below the state dir) has the mode and owner of
    its kind, else what is wrong."""
    mode, kind = stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode)

    def exact(want_kind: int, want: int, owners: set[int] = frozenset({ROOT})) -> str | None:
        if kind != want_kind:
            return (f"is a {stat.filemode(st.st_mode)[0]!r}, "
                    f"expected {stat.filemode(want_kind)[0]!r}")
        if kind != stat.S_IFLNK and mode != want:
            return f"mode {mode:04o}, expected {want:04o}"
        if st.st_uid not in owners:
            return f"owner uid {st.st_uid}, expected one of {sorted(owners)}"
        return None

    def service_made() -> str | None:
        """Files and directories the services (or their scripts) create: owned by root
        or a service user, and writable by nobody else."""
        if st.st_uid not in services | {ROOT}:
            return f"owner uid {st.st_uid} is neither root nor a service user"
        if kind not in (stat.S_IFREG, stat.S_IFDIR):
            return f"unexpected kind {stat.filemode(st.st_mode)}"
        if mode & 0o022:
            return f"mode {mode:04o} lets others than its owner write"
        return None

    if not rel:
        return exact(stat.S_IFDIR, 0o755)
    top = rel[0]
    if len(rel) == 1:
        if top == "tmp":
            return exact(stat.S_IFDIR, 0o1777)
        if top in ("log", "lock", "cache", "spool", "lib", "run"):
            return exact(stat.S_IFDIR, 0o755)
        return "is not a state directory procmgmt creates"
    if top == "lib" and rel[1] == "procmgmt":
        sub = rel[2:]
        if not sub or sub in (("store",), ("profiles",), ("supervisord",)):
            return exact(stat.S_IFDIR, 0o755)
        name = sub[-1]
        if sub[0] == "store":
            if kind == stat.S_IFLNK:
                return None
            if st.st_uid != ROOT:
                return f"store entry owned by uid {st.st_uid}"
            if kind == stat.S_IFDIR:
                return None if mode == 0o555 else f"store directory mode {mode:04o}"
            if name == "manifest.json" and len(sub) == 3:
                return None if mode == 0o400 else f"manifest mode {mode:04o}, expected 0400"
            return None if not mode & 0o222 else f"store file mode {mode:04o} is writable"
        if len(sub) == 1 and name in PRIVATE_NAMES:
            return exact(stat.S_IFREG, 0o600)
        if sub[0] == "profiles" and len(sub) == 2:
            if name.endswith(PRIVATE_SUFFIXES):
                return exact(stat.S_IFREG, 0o600)
            return exact(stat.S_IFLNK, 0)
        if sub[0] == "supervisord" and len(sub) >= 2:
            if len(sub) == 2 or sub[2:] in (("conf.d",), ("bin",)):
                return exact(stat.S_IFDIR, 0o755)
            if sub[2:] == ("supervisord.conf",):
                return exact(stat.S_IFREG, 0o644)
            if sub[2:] in (("external.json",), ("start.lock",)):
                return exact(stat.S_IFREG, 0o600)
            if sub[2:] == ("conf.d", "programs.conf"):
                return exact(stat.S_IFREG, 0o644)
            if len(sub) == 4 and sub[2] in ("conf.d", "bin"):
                return exact(stat.S_IFLNK, 0)
        if sub == ("render-cache",):
            return exact(stat.S_IFDIR, 0o700)
        if sub[0] == "render-cache" and len(sub) == 2 and name.endswith(".json"):
            return exact(stat.S_IFREG, 0o600)
        if sub[0] == "runit":
            return runit_path(sub[1:], exact)
        if sub[0] == "s6":
            return s6_path(sub[1:], exact)
        return "is not a path procmgmt keeps in its own directory"
    if top == "log" and len(rel) == 2 and rel[1].startswith(("supervisord-", "runsvdir-")):
        return exact(stat.S_IFREG, 0o640)
    if top == "run" and len(rel) == 2 and rel[1].startswith("runsvdir-"):
        return exact(stat.S_IFREG, 0o644)
    if top == "run" and len(rel) == 2 and rel[1].startswith("supervisord-"):
        if rel[1].endswith(".sock"):
            return exact(stat.S_IFSOCK, 0o700)
        return exact(stat.S_IFREG, 0o644)
    if top in ("tmp", "run", "log"):
        return service_made()
    return "is not a path a deployment of this example creates"


#: What runsv creates in ``supervise/`` (runsv(8); under runsvdir's umask 022).
SUPERVISE = {"lock": (stat.S_IFREG, 0o600), "control": (stat.S_IFIFO, 0o600),
             "ok": (stat.S_IFIFO, 0o600), "pid": (stat.S_IFREG, 0o644),
             "stat": (stat.S_IFREG, 0o644), "status": (stat.S_IFREG, 0o644)}


def runit_path(sub: tuple[str, ...],
               exact: Callable[[int, int], str | None]) -> str | None:
    """``LIB/procmgmt/runit/<profile>/...``: the scan dir and its live service dirs
    (procmgmt's directories 0755, symlinks into the store, a ``down`` file 0644,
    runsv's ``supervise/`` 0700 with root-only control files)."""
    if len(sub) <= 1 or sub[1:] == ("scan",):
        return exact(stat.S_IFDIR, 0o755)
    if sub[1:] == ("start.lock",):
        return exact(stat.S_IFREG, 0o600)
    if sub[1] != "scan":
        return "is not a path of procmgmt's runsvdir"
    inner = sub[3:]
    if inner in ((), ("control",), ("log",)):
        return exact(stat.S_IFDIR, 0o755)
    if inner in (("run",), ("check",), ("proxy",), ("finish",), ("control", "d"),
                 ("log", "run")):
        return exact(stat.S_IFLNK, 0)
    if inner == ("down",):
        return exact(stat.S_IFREG, 0o644)
    if inner in (("supervise",), ("log", "supervise")):
        return exact(stat.S_IFDIR, 0o700)
    if len(inner) >= 2 and inner[-2] == "supervise" and inner[-1] in SUPERVISE:
        return exact(*SUPERVISE[inner[-1]])
    return "is not a path of a runit service directory"


#: What s6-supervise and s6-svscan create (s6-supervise(8), s6-svscan(8)): their
#: control FIFOs root-only, ``event/`` the fifodir s6 makes 03730.
S6_MADE = {"lock": (stat.S_IFREG, 0o644), "control": (stat.S_IFIFO, 0o600),
           "status": (stat.S_IFREG, 0o644), "death_tally": (stat.S_IFREG, 0o644)}


def s6_path(sub: tuple[str, ...],
            exact: Callable[[int, int], str | None]) -> str | None:
    """``LIB/procmgmt/s6/<profile>/...``: the scan dir and its service directories
    (the service's and its logger's 0755, holding symlinks into the store and a
    ``down`` file 0644), ``.build`` 0700, s6-svscan's ``.s6-svscan/`` and
    s6-supervise's ``supervise/`` 0700."""
    if len(sub) <= 1 or sub[1:] == ("scan",):
        return exact(stat.S_IFDIR, 0o755)
    if sub[1:] == ("start.lock",):
        return exact(stat.S_IFREG, 0o600)
    if sub[1] == ".build":
        return exact(stat.S_IFDIR, 0o700) if len(sub) == 2 else "left in .build"
    if sub[1] != "scan":
        return "is not a path of procmgmt's s6-svscan"
    inner = sub[3:]
    if sub[2] == ".s6-svscan":
        if not inner:
            return exact(stat.S_IFDIR, 0o700)
        return exact(stat.S_IFIFO if inner[0] == "control" else stat.S_IFREG, 0o600) \
            if inner in (("lock",), ("control",)) else "is not a file of s6-svscan"
    if inner in ((), ("log",), ("data",)):
        return exact(stat.S_IFDIR, 0o755)
    if inner in (("run",), ("log", "run"), ("data", "start"), ("data", "check")) or (
            len(inner) == 1 and inner[0] in ("down-signal", "timeout-kill", "notification-fd")):
        return exact(stat.S_IFLNK, 0)
    if inner == ("down",):
        return exact(stat.S_IFREG, 0o644)
    if inner in (("supervise",), ("log", "supervise")):
        return exact(stat.S_IFDIR, 0o700)
    if inner in (("event",), ("log", "event")):
        return exact(stat.S_IFDIR, 0o3730)
    if len(inner) >= 2 and inner[-2] == "event" and inner[-1].startswith("ftrig1:"):
        # A listener's fifo in the fifodir (s6-svwait, s6-svlisten: s6's ftrig),
        # there while one waits; made by that listener, not by procmgmt.
        return None
    if len(inner) >= 2 and inner[-2] == "supervise" and inner[-1] in S6_MADE:
        return exact(*S6_MADE[inner[-1]])
    return "is not a path of an s6 service directory"


def check_tree(env: Env, step: str) -> list[str]:
    """Every path below the fixture's directory (the state dir's created parents
    included) against :func:`expected`; the problems, one line each."""
    base = env.root / "state"
    services = service_uids(env.state)
    problems = []
    for dirpath, dirnames, filenames in os.walk(base):
        for name in [None, *dirnames, *filenames]:
            path = Path(dirpath) if name is None else Path(dirpath) / name
            if name is not None and name in dirnames and not (Path(dirpath) / name).is_symlink():
                continue  # reported as the dirpath of its own walk step
            if path == base:
                continue  # made by the fixture
            st = path.lstat()
            if env.state.is_relative_to(path) and path != env.state:
                problem = (None if (stat.S_ISDIR(st.st_mode) and st.st_uid == ROOT
                                    and stat.S_IMODE(st.st_mode) == 0o755)
                           else f"parent of the state dir: {stat.filemode(st.st_mode)} "
                                f"uid {st.st_uid}, expected drwxr-xr-x root")
            else:
                problem = expected(path.relative_to(env.state).parts, st, services)
            if problem:
                problems.append(f"after {step}: {path.relative_to(base)}: {problem}")
    return problems


@pytest.mark.parametrize("mask", [0o000, 0o077], ids=["umask000", "umask077"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_root_lifecycle_modes_do_not_depend_on_the_umask(backend: str, mask: int) -> None:
    """Deploy, upgrade, roll back and undeploy the webapps as root under ``mask``;
    every path created has the mode and owner of its kind after every step."""
    with root_env(backend) as env:
        env.state = env.state / "nested" / "state"
        simple, advanced = env.examples / "processes.py", env.examples / "processes-advanced.py"
        problems: list[str] = []
        with umask(mask):
            env.run("switch", simple)
            for port in (env.base, env.base + 1):
                wait_http(port)
            problems += check_tree(env, "deploy")
            env.run("switch", "--replace", advanced)
            for i in range(1, 7):
                wait_http(env.base + i)
            problems += check_tree(env, "upgrade")
            env.run("switch", "--rollback")
            wait_http(env.base)
            problems += check_tree(env, "rollback")
            env.run("switch", "--undeploy")
            problems += check_tree(env, "undeploy")
        assert problems == [], "\n".join(problems)
        assert (env.state / "lib" / "procmgmt" / "accounts.json").is_file()
