"""``/etc/passwd`` and ``/etc/group`` of an image.

A privileged image holds root and every user and group the model declares,
with fixed ids: the model's (or the ids file's) where given, otherwise the
next free id from :data:`FIRST_ID` in name order, so the same model always
gives the same accounts (a host's useradd would pick whatever is free there).
An unprivileged image holds root and the one account the processes run as.
Passwords are never written: nothing in an image logs in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from procmgmt.errors import UsageError
from procmgmt.ids import credentials_with_ids
from procmgmt.model.credentials import Credentials
from procmgmt.settings import Settings

#: Where ids chosen for the image start (above Debian's dynamic user range).
FIRST_ID = 10000
#: The account of an unprivileged image, when the uid has no name of its own.
RUN_USER = "procmgmt"
NOLOGIN = "/usr/sbin/nologin"


@dataclass(frozen=True)
class Account:
    """One ``passwd`` line's worth."""

    name: str
    uid: int
    gid: int
    description: str = ""
    home: str = "/"
    shell: str = NOLOGIN


@dataclass(frozen=True)
class Accounts:
    """The users and groups of an image."""

    users: tuple[Account, ...]
    groups: tuple[tuple[str, int], ...]
    #: Home directories to create: (path, uid, gid), as ``create_home`` asks.
    homes: tuple[tuple[str, int, int], ...] = ()

    def passwd(self) -> bytes:
        """The ``/etc/passwd`` file."""
        return "".join(f"{u.name}:x:{u.uid}:{u.gid}:{u.description}:{u.home}:{u.shell}\n"
                       for u in self.users).encode()

    def group(self) -> bytes:
        """The ``/etc/group`` file."""
        return "".join(f"{name}:x:{gid}:\n" for name, gid in self.groups).encode()

    def uid_of(self, name: str) -> int:
        """The uid of user ``name``."""
        return next(u.uid for u in self.users if u.name == name)


ROOT = Account("root", 0, 0, "root", "/root", "/bin/sh")


def _allocate(wanted: Mapping[str, int | None], taken: set[int], what: str) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name, given in sorted(wanted.items()):
        if given is not None:
            if given in taken and given not in ids.values():
                raise UsageError(f"image accounts: {what} {name} wants id {given}, which "
                                 "another account of the image has")
            ids[name] = given
            taken.add(given)
    nxt = FIRST_ID
    for name, given in sorted(wanted.items()):
        if given is None:
            while nxt in taken:
                nxt += 1
            ids[name] = nxt
            taken.add(nxt)
    return ids


def privileged(credentials: Iterable[Credentials], settings: Settings) -> Accounts:
    """root plus every account the model declares (ids fixed, see the module doc)."""
    groups: dict[str, int | None] = {}
    users: dict[str, tuple[int | None, str | None, str, str]] = {}
    make_home: set[str] = set()
    for declared in credentials:
        creds = credentials_with_ids(declared, settings.ids)
        for name, g in creds.groups.items():
            if groups.get(name) is None:
                groups[name] = g.gid
        for name, u in creds.users.items():
            if u.create_home_only:
                continue
            users[name] = (u.uid, u.group, u.description or "", u.home_dir)
            if u.create_home and u.home_dir.startswith("/") and u.home_dir != "/dev/null":
                make_home.add(name)
    for name, (_, group, _, _) in users.items():
        if group is None:
            groups.setdefault(name, None)  # useradd's user group
        elif group not in groups and group != "root":
            raise UsageError(f"image accounts: user {name} has group {group!r}, which the "
                             "model does not declare")
    groups.pop("root", None)
    users.pop("root", None)
    gids = _allocate(groups, {0}, "group")
    uids = _allocate({n: u[0] for n, u in users.items()}, {0}, "user")
    gids["root"] = 0
    accounts = [ROOT] + [Account(name, uids[name], gids[group or name], desc, home)
                         for name, (_, group, desc, home) in sorted(users.items())]
    homes = tuple(sorted((a.home, a.uid, a.gid) for a in accounts if a.name in make_home))
    return Accounts(tuple(accounts),
                    tuple(sorted(gids.items(), key=lambda item: (item[1], item[0]))), homes)


def unprivileged(uid: int, gid: int) -> Accounts:
    """root plus the account the image runs as (``procmgmt``, home ``/``)."""
    if uid == 0:
        return Accounts((ROOT,), (("root", 0),))
    groups = (("root", 0),) if gid == 0 else (("root", 0), (RUN_USER, gid))
    return Accounts((ROOT, Account(RUN_USER, uid, gid, "procmgmt image")), groups)
