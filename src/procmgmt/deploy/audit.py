"""What ``procmgmt doctor`` checks on disk and in the account database.

procmgmt creates everything with explicit modes and records the ids of the
accounts it creates, but a live system also has history: state written by an
older version (or under another umask), files planted by local users, accounts
changed by hand. These checks report what would let someone else steer root,
or what breaks a service's access to its own state:

* **world-writable paths** under the state dir (and the state dir's own
  ancestors, which decide who can replace it); sticky directories such as a
  shared tmp dir are world-writable on purpose and not reported;
* **foreign pid files**: a pid file of the current generation that is a
  symlink or belongs to neither root (the deployer) nor the process's user,
  i.e. was written by someone who could name any PID in it;
* **account ids**: an account procmgmt created whose uid/gid is no longer the
  one it was created with (its files carry the old one), and a remembered id
  of a deleted account that another account took meanwhile (redeploying it
  will fail); a record of accounts that others could write;
* **state owned by unknown uids**: files whose owner has no account. One the
  id map explains (an account deleted by undeploy, re-created with the same
  id on the next deploy) is a note, not a problem.

The walk does not follow symlinks and stops after :data:`WALK_LIMIT` entries
(it says so), so a huge state dir cannot make doctor hang.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from procmgmt.accounts_platform import SystemView
from procmgmt.deploy.accounts import GROUPS, USERS, Record, record_path
from procmgmt.errors import DeployError
from procmgmt.manifest import Generation
from procmgmt.settings import Settings

#: At most this many entries of the state dir are examined.
WALK_LIMIT = 200_000


@dataclass(frozen=True)
class Finding:
    """One thing doctor reports: what kind, about which path or account, and why."""

    kind: str
    subject: str
    detail: str
    #: False for notes: explained and harmless, reported without failing doctor.
    problem: bool = True

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"


WORLD_WRITABLE = "world-writable"
FOREIGN_PID_FILE = "foreign pid file"
ACCOUNT_ID = "account id"
UNKNOWN_OWNER = "unknown owner"


def _ancestors(path: str) -> list[str]:
    out = []
    parent = os.path.dirname(os.path.abspath(path))
    while True:
        out.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            return out
        parent = up


def _loose(st: os.stat_result) -> bool:
    """Writable by everyone, and not a sticky directory (nor a symlink)."""
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & stat.S_IWOTH:
        return False
    return not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX)


def scan_state(settings: Settings, view: SystemView, record: Record | None,
               limit: int = WALK_LIMIT) -> list[Finding]:
    """World-writable paths and paths of unknown owners under the state dir."""
    findings: list[Finding] = []
    for anc in _ancestors(settings.state_dir):
        try:
            st = os.lstat(anc)
        except OSError:
            continue
        if _loose(st):
            findings.append(Finding(WORLD_WRITABLE, anc, f"mode {stat.filemode(st.st_mode)} "
                                    "(an ancestor of the state dir: anyone can replace "
                                    "what is below it); chmod o-w it"))
    unknown: dict[int, list[str]] = {}
    known: dict[int, bool] = {}
    seen = 0
    root = settings.state_dir
    try:
        top = os.lstat(root)
    except OSError:
        return findings
    stack = [(root, top)]
    while stack and seen < limit:
        path, st = stack.pop()
        seen += 1
        if _loose(st):
            findings.append(Finding(WORLD_WRITABLE, path, f"mode {stat.filemode(st.st_mode)}: "
                                    "anyone can change it; chmod o-w it"))
        if st.st_uid not in known:
            known[st.st_uid] = view.user_by_id(st.st_uid) is not None
        if not known[st.st_uid]:
            unknown.setdefault(st.st_uid, []).append(path)
        if stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                continue
            for name in reversed(names):
                child = os.path.join(path, name)
                try:
                    stack.append((child, os.lstat(child)))
                except OSError:
                    continue
    if stack:
        findings.append(Finding(WORLD_WRITABLE, root, f"only the first {limit} entries were "
                                "examined", problem=False))
    for uid, paths in sorted(unknown.items()):
        was = record.owner_of(USERS, uid) if record is not None else None
        where = paths[0] + (f" and {len(paths) - 1} more" if len(paths) > 1 else "")
        if was is not None and view.user(was) is None:
            findings.append(Finding(UNKNOWN_OWNER, where, (
                f"owned by uid {uid}, which no account has now: the uid of user {was}, "
                "which procmgmt deleted; deploying it again re-creates it with this uid"),
                problem=False))
        else:
            findings.append(Finding(UNKNOWN_OWNER, where, (
                f"owned by uid {uid}, which no account has and procmgmt never created: "
                "an account created later with this uid would own it; chown it to its "
                "service's user (or remove it)")))
    return findings


def pid_file_owners(gen: Generation | None, view: SystemView) -> list[Finding]:
    """Pid files of ``gen`` that are a symlink, or owned by neither root (us) nor the
    process's user."""
    findings: list[Finding] = []
    for proc in gen.processes if gen is not None else ():
        pid_file = str(proc.extra.get("pid_file") or proc.pid_file or "")
        if not pid_file:
            continue
        try:
            st = os.lstat(pid_file)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            findings.append(Finding(FOREIGN_PID_FILE, pid_file, (
                f"pid file of {proc.name} is a symbolic link (to {os.readlink(pid_file)}); "
                "remove it")))
            continue
        trusted = {0, os.geteuid()}
        found = view.user(proc.user) if proc.user else None
        if found is not None:
            trusted.add(found[0])
        if st.st_uid not in trusted:
            owner = view.user_by_id(st.st_uid) or f"uid {st.st_uid}"
            findings.append(Finding(FOREIGN_PID_FILE, pid_file, (
                f"pid file of {proc.name} belongs to {owner}, not root or "
                f"{proc.user or 'the deploying user'}: whoever wrote it chooses the PID "
                "procmgmt signals; stop the process by hand and remove the file")))
    return findings


def account_ids(settings: Settings, view: SystemView) -> tuple[list[Finding], Record | None]:
    """Accounts whose id is not the one procmgmt created them with, remembered ids
    another account took, and a record others could write. Also returns the record."""
    path = record_path(settings)
    try:
        record = Record.load(path)
    except DeployError as exc:
        return [Finding(ACCOUNT_ID, path, str(exc).removeprefix(f"{path}: "))], None
    findings: list[Finding] = []
    for kind, word, lookup, owner in (
            (USERS, "uid", lambda n: (u[0] if (u := view.user(n)) else None),
             view.user_by_id),
            (GROUPS, "gid", view.group, view.group_by_id)):
        for name, ident in sorted(record.ids[kind].items()):
            now = lookup(name)
            if now is not None and now != ident:
                created = name in record.data[kind]
                findings.append(Finding(ACCOUNT_ID, f"{kind[:-1]} {name}", (
                    f"has {word} {now}, but procmgmt created it with {word} {ident}"
                    + (" (procmgmt will not delete it)" if created else "")
                    + f"; files it owned still carry {word} {ident}")))
            elif now is None:
                holder = owner(ident)
                if holder is not None:
                    findings.append(Finding(ACCOUNT_ID, f"{kind[:-1]} {name}", (
                        f"was deleted; its {word} {ident} now belongs to {kind[:-1]} "
                        f"{holder}, so deploying {name} again fails until that is "
                        "resolved")))
    return findings, record


def audit(settings: Settings, gen: Generation | None,
          view: SystemView | None = None) -> list[Finding]:
    """Everything above, problems and notes."""
    view = view or SystemView()
    findings, record = account_ids(settings, view)
    return [*scan_state(settings, view, record), *pid_file_owners(gen, view), *findings]
