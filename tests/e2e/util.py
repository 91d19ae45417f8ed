"""Helpers for end-to-end tests: free ports, HTTP checks, leftover detection, other users."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def worker_share(start: int, end: int) -> tuple[int, int]:
    """This pytest-xdist worker's part of the ports ``start`` .. ``end`` (all of them
    outside xdist): a block found free is bound only later, when the test deploys,
    so tests running at the same time in two workers must not pick from the same ports."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if not worker.startswith("gw") or count < 2:
        return start, end
    size = (end - start) // count
    index = int(worker[2:]) % count
    return start + index * size, start + (index + 1) * size


def free_port_block(count: int, start: int = 20000, end: int = 32700) -> int:
    """A base port such that base .. base+count-1 are all free on 127.0.0.1.

    Below Linux's default ephemeral range (32768-60999): a port found free there
    can be taken by any outgoing connection before the test's server binds it."""
    import random

    start, end = worker_share(start, end)
    rng = random.Random(os.getpid() ^ int(time.time()))
    for _ in range(200):
        base = rng.randrange(start, end - count)
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port block found")


def http_get(port: int, host: str | None = None, timeout: float = 2.0) -> str | None:
    """Body of GET http://127.0.0.1:port/ (None when nothing answers)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def wait_http(port: int, timeout: float = 10.0, host: str | None = None) -> str:
    """Wait until the port answers over HTTP; the body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http_get(port, host)
        if body is not None:
            return body
        time.sleep(0.05)
    raise AssertionError(f"nothing answers on 127.0.0.1:{port} after {timeout} s")


def port_closed(port: int) -> bool:
    """True when nothing accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def processes_mentioning(marker: str) -> list[int]:
    """PIDs of processes whose environment, command line or working directory
    contains ``marker``.

    Identifies the processes a test started (its private state dir appears in
    their pid file paths, config paths or environment) without matching names;
    a supervisor whose arguments are relative names (runit's ``runsv NAME``
    runs in its service directory) is found by its working directory.
    """
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in os.fsencode(os.readlink(f"/proc/{entry}/cwd")):
                found.append(int(entry))
                continue
        for part in ("environ", "cmdline"):
            try:
                with open(f"/proc/{entry}/{part}", "rb") as f:
                    if needle in f.read():
                        found.append(int(entry))
                        break
            except OSError:
                continue
    return [p for p in found if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def uid_pids(uid: int) -> list[int]:
    """PIDs of the processes with ``uid`` among their real, effective, saved or fs uids."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        except (OSError, StopIteration):
            continue
        if str(uid) in uids:
            found.append(int(entry))
    return found


def kill_uid(uid: int) -> None:
    """SIGKILL, by PID, every process of the throw-away test user ``uid``."""
    for pid in uid_pids(uid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_leftovers(marker: str) -> list[int]:
    """SIGKILL (by PID) every process that mentions ``marker``; the PIDs killed."""
    pids = processes_mentioning(marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


def wait_no_leftovers(marker: str, timeout: float = 10.0) -> list[int]:
    """Wait until no process mentions ``marker``; what is still there after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        left = processes_mentioning(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


class Runner:
    """Runs the procmgmt CLI in a subprocess, as this user or as another one."""

    def __init__(self, state_dir: Path, backend: str, extra_params: str,
                 python: str = sys.executable, pythonpath: str | None = None,
                 user: str | None = None, cwd: Path | None = None,
                 user_change: bool = False) -> None:
        self.state_dir = state_dir
        self.backend = backend
        self.extra_params = extra_params
        self.python = python
        self.pythonpath = pythonpath
        self.user = user
        self.cwd = cwd
        #: Let procmgmt create accounts and switch users (root): no
        #: --force-disable-user-change.
        self.user_change = user_change

    def __call__(self, *args: str | Path, check: bool = True,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv, env = self.command(*args)
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=self.cwd, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"procmgmt {args[0]} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def command(self, *args: str | Path) -> tuple[list[str], dict[str, str]]:
        """The argv and environment of ``procmgmt ARGS`` (for a process run in the
        background, e.g. ``logs -f``)."""
        argv = [self.python, "-m", "procmgmt", str(args[0]),
                "--state-dir", str(self.state_dir), "-P", self.backend,
                *([] if self.user_change else ["--force-disable-user-change"]),
                "--extra-params", self.extra_params,
                *[str(a) for a in args[1:]]]
        env = dict(os.environ)
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        if self.user:
            pw = pwd.getpwnam(self.user)
            env.update(HOME=pw.pw_dir, USER=self.user, LOGNAME=self.user,
                       PATH="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            env.pop("XDG_STATE_HOME", None)
            argv = ["runuser", "-u", self.user, "--", *argv]
        return argv, env


#: Prefixes of the accounts a test marked ``own_accounts`` creates for itself:
#: the prefix, then digits of its process id (and more, for several at once).
#: Such tests run beside the ``accounts`` group, so a check that a switch
#: created no account leaves these names out (another worker adds and deletes
#: them at any moment).
OWN_ACCOUNT_PREFIXES = ("pmtest", "pmops", "pmimg", "pmnet")


def own_account_name(prefix: str, suffix: str = "") -> str:
    """A name for an account of this test process only (see OWN_ACCOUNT_PREFIXES)."""
    assert prefix in OWN_ACCOUNT_PREFIXES, prefix
    return f"{prefix}{os.getpid() % 100000}{suffix}"


#: Where such accounts take their ids: above the system range procmgmt (and
#: ``useradd --system``) choose from, so a test's account never takes the id a
#: deployment beside it remembered for its own account (which then refused
#: to create it again: "gid 991 now belongs to group pmops26665").
OWN_ID_BAND = range(61000, 64000)


def own_account_id() -> int:
    """An id free both as a uid and as a gid in OWN_ID_BAND, the start depending on
    this process so that tests beside it start elsewhere (a clash makes useradd fail)."""
    import grp

    start = (os.getpid() * 7) % len(OWN_ID_BAND)
    for i in range(len(OWN_ID_BAND)):
        candidate = OWN_ID_BAND[(start + i) % len(OWN_ID_BAND)]
        try:
            pwd.getpwuid(candidate)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(candidate)
        except KeyError:
            return candidate
    raise AssertionError(f"no free id in {OWN_ID_BAND}")


def add_own_account(name: str, *useradd_options: str) -> int:
    """``useradd`` of ``name`` with a group of the same name, both with an id from
    OWN_ID_BAND; the id."""
    for _ in range(5):
        ident = own_account_id()
        made = subprocess.run(["groupadd", "--gid", str(ident), name], capture_output=True,
                              text=True, check=False)
        if made.returncode != 0:
            continue  # taken meanwhile
        made = subprocess.run(["useradd", "--uid", str(ident), "--gid", str(ident),
                               *useradd_options, name], capture_output=True, text=True,
                              check=False)
        if made.returncode == 0:
            return ident
        subprocess.run(["groupdel", name], capture_output=True, check=False)
    raise AssertionError(f"cannot create {name}: {made.stderr}")


def is_own_account(name: str) -> bool:
    """Whether ``name`` is an account some test process made for itself."""
    return any(name.startswith(p) and name[len(p):][:1].isdigit() for p in OWN_ACCOUNT_PREFIXES)


@contextlib.contextmanager
def other_user_tree(tmp_root: Path) -> Iterator[tuple[str, Path, str]]:
    """A throw-away system user and a world-readable copy of procmgmt for it.

    Yields (user name, tree root, PYTHONPATH). The tree holds ``src/``, the
    venv's ``supervisor`` package and ``examples/``; the user runs Debian's
    /usr/bin/python3 (the venv's interpreter may live under a 0700 home).
    """
    import supervisor

    name = own_account_name("pmtest")
    home = tmp_root / "home"
    tree = tmp_root / "tree"
    for d in (tmp_root,):
        d.chmod(0o755)
    tree.mkdir()
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
    parent = tmp_root
    while parent != parent.parent:  # every ancestor must be traversable
        with contextlib.suppress(PermissionError):
            if not os.stat(parent).st_mode & 0o001:
                raise PermissionError(f"{parent} is not traversable by other users")
        parent = parent.parent
    add_own_account(name, "--create-home", "--home-dir", str(home), "--shell", "/bin/sh")
    try:
        yield name, tree, str(tree / "lib")
    finally:
        kill_uid(pwd.getpwnam(name).pw_uid)
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
        subprocess.run(["groupdel", name], check=False, capture_output=True)


def start_lines(output: str) -> list[str]:
    """Names in 'starting NAME' lines of a switch's output, in order."""
    return [line.split()[1] for line in output.splitlines() if line.startswith("starting ")]


def stop_lines(output: str) -> list[str]:
    """Names in 'stopping NAME' lines of a switch's output, in order."""
    return [line.split()[1] for line in output.splitlines() if line.startswith("stopping ")]


def ordered(order: Sequence[str], before: str, after: str) -> bool:
    """``before`` appears earlier than ``after`` in ``order``."""
    return order.index(before) < order.index(after)
