"""Pre-flight: everything a switch can know will fail, checked before anything stops.

A switch that stops the running service and then finds that rc.subr is
missing, that an executable is misspelled or that another program holds the
port has already interrupted the service, and undoing it is a second chance
to fail. So once the new generation is built, and before the journal is
written or any process is stopped, the engine asks:

- does this machine have the tools of every backend involved (each
  activator declares its own: :meth:`Activator.required_tools` and
  :meth:`Activator.preflight`: rc.subr, launchctl, cygrunsrv, systemctl and
  a reachable bus)?
- does every executable of a process that will be started exist, and is it
  executable?
- is every port a starting process declares (its TCP or HTTP readiness
  check, the instance's ``port``/``*_port`` metadata) free, or held by a
  process this switch stops first? A port held by anything else is named
  with the holder's PID and command (Linux: ``/proc``; elsewhere this check
  is skipped);
- as root with user changes: can each service user traverse every
  directory it must reach (its executable, working directory, pid file
  directory, ``*_dir`` metadata)?

Every problem is listed at once in one :class:`PreflightError` (exit 1);
nothing has been touched when it is raised.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import stat
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from procmgmt import listeners
from procmgmt import readiness as rd
from procmgmt.backends.base import Activator
from procmgmt.deploy.plan import Plan
from procmgmt.errors import PreflightError, ProcmgmtError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.settings import Settings

#: Host names a readiness check may use for this machine.
LOCAL_HOSTS = ("localhost", "0.0.0.0", "::", "::1", "")


def check(settings: Settings, activator: Callable[[str], Activator], old: Generation | None,
          new: Generation, plan: Plan) -> None:
    """Raise :class:`PreflightError` listing every problem of switching ``old`` -> ``new``.

    ``activator`` gives the activator of a backend name: the caller's own (cached)
    ones, so the checks ask the same objects that will then activate."""
    problems: list[str] = []
    acts = _activators(activator, old, new, plan, problems)
    starting = list(plan.start)
    problems += executable_problems(starting)
    act_old = acts.get(old.backend) if old is not None else None
    problems += port_problems(starting, plan, old, act_old)
    if settings.privileged and os.geteuid() == 0:
        from procmgmt.deploy.accounts import Record, record_path

        try:
            remembered = Record.load(record_path(settings)).remembered
        except (OSError, ValueError):  # an unsafe record is refused by account creation
            remembered = None
        problems += directory_problems(starting, remembered)
    if problems:
        raise PreflightError(problems)


def _activators(activator: Callable[[str], Activator], old: Generation | None,
                new: Generation, plan: Plan,
                problems: list[str]) -> dict[str, Activator]:
    """The activators of the backends this switch drives, and their own checks: the
    new one's when it starts anything, the old one's when it stops anything."""
    wanted: list[Generation] = []
    if new.processes:
        wanted.append(new)
    if old is not None and old.processes and (plan.stop or old.backend != new.backend):
        wanted.append(old)
    acts: dict[str, Activator] = {}
    for gen in wanted:
        # A backend that cannot even be set up (a usage error) says so itself, as before.
        act = activator(gen.backend)
        acts[gen.backend] = act
        for problem in act.preflight(gen):
            line = f"{gen.backend}: {problem}"
            if line not in problems:
                problems.append(line)
    return acts


# --- executables ------------------------------------------------------------------------


def resolve(word: str, search_path: str | None) -> str | None:
    """The file ``word`` runs: itself when it contains a slash, else the first match on
    the process's PATH, then ours and the system's."""
    if "/" in word:
        return word
    dirs = ":".join(p for p in (search_path, os.environ.get("PATH"), SYSTEM_PATH) if p)
    return shutil.which(word, path=dirs)


def executable_problems(procs: Iterable[DeployedProcess]) -> list[str]:
    """Every executable of ``procs`` that does not exist or cannot be executed."""
    problems = []
    for p in procs:
        for word in p.executables:
            path = resolve(word, p.search_path)
            if path is None:
                problems.append(f"{p.name}: executable {word!r} not found on its PATH "
                                f"({p.search_path or os.environ.get('PATH') or SYSTEM_PATH})")
            elif not os.path.isfile(path):
                problems.append(f"{p.name}: executable {path} does not exist"
                                if not os.path.lexists(path)
                                else f"{p.name}: executable {path} is not a regular file")
            elif not os.access(path, os.X_OK):
                problems.append(f"{p.name}: {path} is not executable (mode "
                                f"{stat.filemode(os.stat(path).st_mode)})")
    return problems


# --- ports ------------------------------------------------------------------------------


def declared_ports(proc: DeployedProcess) -> list[int]:
    """The local TCP ports ``proc`` will listen on: its readiness check's and its
    instance's ``port``/``*_port`` metadata."""
    ports: list[int] = []
    try:
        check = rd.from_json(proc.readiness) if proc.readiness else None
    except (ValueError, TypeError):
        check = None
    if isinstance(check, rd.TCP) and _local(check.host):
        ports.append(check.port)
    elif isinstance(check, rd.HTTP) and _local(urllib.parse.urlsplit(check.url).hostname):
        ports.append(check.port())
    for key, value in proc.metadata.items():
        if (key == "port" or key.endswith("_port")) and isinstance(value, int) \
                and not isinstance(value, bool) and 0 < value < 65536:
            ports.append(value)
    return sorted(set(ports))


def _local(host: str | None) -> bool:
    host = (host or "").strip("[]")
    return host in LOCAL_HOSTS or host.startswith("127.")


@dataclass
class _Holders:
    """Pids of the old generation's processes, looked up once and only when needed."""

    old: Generation | None
    act: Activator | None
    plan: Plan
    _trees: dict[str, set[int]] | None = None

    def trees(self) -> dict[str, set[int]]:
        """Process name -> its process tree, for every running old process."""
        if self._trees is None:
            self._trees = {}
            if self.old is not None and self.act is not None:
                for p in self.old.processes:
                    try:
                        roots = self.act.started_pids(self.old, p)
                    except (ProcmgmtError, OSError):
                        continue
                    if roots:
                        self._trees[p.name] = listeners.process_tree(roots)
        return self._trees

    def owner(self, pid: int) -> str | None:
        """The old process whose tree holds ``pid``."""
        for name, tree in self.trees().items():
            if pid in tree:
                return name
        return None


def port_problems(starting: Sequence[DeployedProcess], plan: Plan, old: Generation | None,
                  act_old: Activator | None) -> list[str]:
    """Ports a starting process declares that something this switch does not stop holds."""
    problems = []
    stopped = {p.name for p in plan.stop}
    holders = _Holders(old, act_old, plan)
    table = listeners.listen_table() if starting else None
    if table is None:
        return []  # nothing starts, or no /proc to tell (FreeBSD, macOS)
    for proc in starting:
        for port in declared_ports(proc):
            found = table.get(port)
            if not found:
                continue
            by_inode = listeners.holders({ln.inode for ln in found})
            for ln in found:
                pid = by_inode.get(ln.inode)
                owner = holders.owner(pid) if pid is not None else None
                if owner is not None and owner in stopped:
                    continue  # stopped before anything starts
                who = listeners.describe_holder(port, ln, pid)
                if owner is not None:
                    who += f", i.e. {owner} of the current generation, which keeps running"
                problems.append(f"{proc.name}: port {port} is already in use by {who}; stop "
                                "it or give the instance another port")
                break
    return problems


# --- directories ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Identity:
    """Who a service user will be: uid and gids where known (None: created later by
    this switch with an id the system picks, which owns no existing directory)."""

    name: str
    uid: int | None
    gids: frozenset[int]


def identity(proc: DeployedProcess,
             remembered: Callable[[str, str], int | None] | None = None) -> _Identity | None:
    """The identity ``proc`` runs as, None for root or no user. An account procmgmt
    deleted comes back with the ids it had (``remembered``: the accounts record's
    uid/gid map), so those judge its directories."""
    user = proc.user
    if not user or user == "root":
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        pass
    else:
        return _Identity(user, pw.pw_uid, frozenset(os.getgrouplist(user, pw.pw_gid)))
    declared: Any = (proc.credentials.get("users") or {}).get(user) or {}
    groups: Any = proc.credentials.get("groups") or {}
    uid = declared.get("uid") if isinstance(declared, dict) else None
    if not isinstance(uid, int) and remembered is not None:
        uid = remembered("users", user)
    gids: set[int] = set()
    gname = declared.get("group") if isinstance(declared, dict) else None
    if gname:
        gdecl = groups.get(gname) if isinstance(groups, dict) else None
        if isinstance(gdecl, dict) and isinstance(gdecl.get("gid"), int):
            gids.add(gdecl["gid"])
        elif (gid := remembered("groups", gname) if remembered else None) is not None:
            gids.add(gid)
        else:
            with contextlib.suppress(KeyError):
                gids.add(grp.getgrnam(gname).gr_gid)
    return _Identity(user, uid if isinstance(uid, int) else None, frozenset(gids))


def _has_acl(path: str) -> bool:
    """An access ACL decides instead of the mode bits: do not judge such a directory."""
    try:
        return "system.posix_acl_access" in os.listxattr(path)
    except (OSError, AttributeError):
        return False


def _allowed(st: os.stat_result, who: _Identity, bit: int) -> bool:
    """Would ``who`` have permission ``bit`` (1 = x) on a file with ``st``?"""
    if who.uid is not None and st.st_uid == who.uid:
        return bool(st.st_mode & (bit << 6))
    if st.st_gid in who.gids:
        return bool(st.st_mode & (bit << 3))
    return bool(st.st_mode & bit)


def _ancestors(path: str) -> Iterator[str]:
    """``/``, ``/a``, ``/a/b`` ... up to and including ``path``."""
    parts = os.path.normpath(path).split("/")
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i]) or "/"


def blocked_at(path: str, who: _Identity) -> str | None:
    """The first existing directory on the way to ``path`` that ``who`` cannot
    traverse, described; None when every existing one can be traversed."""
    for d in _ancestors(path):
        try:
            st = os.stat(d)
        except OSError:
            return None  # created later (init-state: 0755, or the process itself)
        if not stat.S_ISDIR(st.st_mode):
            return None
        if not _allowed(st, who, 1) and not _has_acl(d):
            owner = _name(pwd.getpwuid, st.st_uid)
            group = _name(grp.getgrgid, st.st_gid)
            return f"{d} ({stat.filemode(st.st_mode)} {owner}:{group})"
    return None


def _name(lookup: Any, number: int) -> str:
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def needed_paths(proc: DeployedProcess) -> list[tuple[str, str]]:
    """(what, path) of everything ``proc``'s user must reach."""
    paths: list[tuple[str, str]] = []
    for word in proc.executables:
        exe = resolve(word, proc.search_path)
        if exe and os.path.isabs(exe):
            paths.append(("its executable", os.path.dirname(exe)))
    if proc.directory:
        paths.append(("its working directory", proc.directory))
    if proc.pid_file:
        paths.append(("its pid file's directory", os.path.dirname(proc.pid_file)))
    for key, value in proc.metadata.items():
        if key.endswith("_dir") and isinstance(value, str) and os.path.isabs(value):
            paths.append((key, value))
    return paths


def directory_problems(procs: Iterable[DeployedProcess],
                       remembered: Callable[[str, str], int | None] | None = None
                       ) -> list[str]:
    """Directories a service user must reach but cannot traverse."""
    problems = []
    for proc in procs:
        who = identity(proc, remembered)
        if who is None:
            continue
        for what, path in needed_paths(proc):
            where = blocked_at(path, who)
            if where is not None:
                problems.append(f"{proc.name}: user {who.name} cannot reach {what} {path}: "
                                f"no search permission on {where}; choose a state dir "
                                "everyone can traverse (e.g. not under /root) or grant o+x")
    return problems


__all__ = ["check", "declared_ports", "directory_problems", "executable_problems",
           "port_problems", "resolve"]
