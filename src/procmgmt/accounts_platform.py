"""The system's own account tools, chosen per platform: what to run to add or delete
a user or a group.

procmgmt never edits ``/etc/passwd`` or ``/etc/group`` itself: each platform has
tools that also update shadow files, NSS caches and directory services, and
that know its id ranges. This module only *plans*: every function returns
the :class:`Command` list to run (pure, so the FreeBSD and macOS plans are
tested on Linux); :mod:`procmgmt.deploy.accounts` decides what to create or
delete and runs the plans.

* Linux (shadow-utils): ``groupadd --system [-g GID]``, ``useradd --system
  [-u -g -c -d -s -p] (--create-home | --no-create-home)``, ``userdel`` (never
  ``-r``: home and state directories stay), ``groupdel``.
* FreeBSD: ``pw groupadd NAME [-g GID]``, ``pw useradd NAME [-u -g -c -d -s]
  [-m] [-H 0]`` (the encrypted password on stdin), ``pw userdel NAME`` (no
  ``-r``), ``pw groupdel NAME``.
* macOS: ``dscl . -create`` per attribute. Directory Services chooses no ids,
  so a missing uid/gid is picked here (the lowest free one from 200 up, in the
  range macOS leaves to system daemons); ``IsHidden`` keeps the account off the
  login window; a home directory is made with mkdir/chown/chmod. A password
  cannot be set from an encrypted string on macOS: the account is created
  without one (login disabled) and the plan carries a warning.
"""

from __future__ import annotations

import grp
import pwd
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

#: What ``home_dir`` means when no home is wanted (the original's default).
NO_HOME = "/dev/null"
#: Where macOS ids are searched from when none is given (below 500: system accounts).
DARWIN_FIRST_ID = 200
DARWIN_LAST_ID = 499


@dataclass(frozen=True)
class Command:
    """One tool invocation; ``stdin`` is fed to it (FreeBSD reads passwords there)."""

    argv: tuple[str, ...]
    stdin: str | None = None

    def describe(self) -> str:
        """The command line for messages, with a secret on stdin left out."""
        return " ".join(self.argv) + (" (password on stdin)" if self.stdin else "")


@dataclass
class Plan:
    """Commands to run in order, plus warnings to show the user."""

    commands: list[Command] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def run(self, argv: Iterable[str], stdin: str | None = None) -> None:
        """Append a command."""
        self.commands.append(Command(tuple(argv), stdin))


class SystemView:
    """Read access to the account database (the real one; tests pass a fake).

    Lookups go through NSS (``pwd``/``grp``), so accounts from any source count.
    """

    def user(self, name: str) -> tuple[int, int] | None:
        """(uid, primary gid) of ``name``, or None when there is no such user."""
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            return None
        return pw.pw_uid, pw.pw_gid

    def group(self, name: str) -> int | None:
        """The gid of group ``name``, or None."""
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return None

    def used_uids(self) -> set[int]:
        """Every uid in use."""
        return {pw.pw_uid for pw in pwd.getpwall()}

    def used_gids(self) -> set[int]:
        """Every gid in use."""
        return {g.gr_gid for g in grp.getgrall()}

    def user_by_id(self, uid: int) -> str | None:
        """The name of the user with ``uid``, or None."""
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return None

    def group_by_id(self, gid: int) -> str | None:
        """The name of the group with ``gid``, or None."""
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return None


def _get(user: dict[str, Any], key: str) -> Any:
    value = user.get(key)
    return None if value in (None, "") else value


#: shadow-utils' defaults when /etc/login.defs says nothing.
LINUX_SYS_ID_MIN = 101
LINUX_ID_MIN = 1000


def login_defs(path: str = "/etc/login.defs") -> dict[str, int]:
    """The numeric settings of shadow-utils' ``login.defs`` (empty when unreadable)."""
    found: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and parts[1].isdigit():
            found[parts[0]] = int(parts[1])
    return found


class Platform:
    """Account commands of one operating system (the interface; Linux by default)."""

    name = "linux"

    def id_range(self, kind: str) -> tuple[int, int] | None:
        """(lowest, highest) id the system tools give system accounts of ``kind``
        ("uid" or "gid"), so procmgmt can choose the id itself (and avoid ids it
        recorded for accounts it deleted); None: leave the choice to the tool."""
        defs = login_defs()
        key = "UID" if kind == "uid" else "GID"
        low = defs.get(f"SYS_{key}_MIN", LINUX_SYS_ID_MIN)
        high = defs.get(f"SYS_{key}_MAX", defs.get(f"{key}_MIN", LINUX_ID_MIN) - 1)
        return (low, high) if low <= high else None

    def add_group(self, name: str, gid: int | None, view: SystemView) -> Plan:
        """Commands creating group ``name``."""
        plan = Plan()
        plan.run(["groupadd", "--system", *(["-g", str(gid)] if gid is not None else []),
                  name])
        return plan

    def add_user(self, name: str, user: dict[str, Any], view: SystemView) -> Plan:
        """Commands creating user ``name`` from its credentials dict (``User`` fields)."""
        argv = ["useradd", "--system"]
        for flag, key in (("-u", "uid"), ("-g", "group"), ("-c", "description"),
                          ("-d", "home_dir"), ("-s", "shell"), ("-p", "password")):
            value = _get(user, key)
            if value is not None:
                argv += [flag, str(value)]
        argv.append("--create-home" if user.get("create_home") else "--no-create-home")
        argv.append(name)
        plan = Plan()
        plan.run(argv)
        return plan

    def delete_user(self, name: str) -> Plan:
        """Commands deleting user ``name`` (its home directory stays)."""
        plan = Plan()
        plan.run(["userdel", name])
        return plan

    def delete_group(self, name: str) -> Plan:
        """Commands deleting group ``name``."""
        plan = Plan()
        plan.run(["groupdel", name])
        return plan


class FreeBSD(Platform):
    """``pw(8)``."""

    name = "freebsd"

    def id_range(self, kind: str) -> tuple[int, int] | None:
        return None  # pw chooses (its range is in pw.conf, not read here)

    def add_group(self, name: str, gid: int | None, view: SystemView) -> Plan:
        plan = Plan()
        plan.run(["pw", "groupadd", name, *(["-g", str(gid)] if gid is not None else [])])
        return plan

    def add_user(self, name: str, user: dict[str, Any], view: SystemView) -> Plan:
        argv = ["pw", "useradd", name]
        for flag, key in (("-u", "uid"), ("-g", "group"), ("-c", "description"),
                          ("-d", "home_dir"), ("-s", "shell")):
            value = _get(user, key)
            if value is not None:
                argv += [flag, str(value)]
        if user.get("create_home"):
            argv.append("-m")
        password = _get(user, "password")
        if password is not None:
            # -H 0: the encrypted password is read from file descriptor 0, so it
            # never appears in a process listing.
            argv += ["-H", "0"]
        plan = Plan()
        plan.run(argv, stdin=f"{password}\n" if password is not None else None)
        return plan

    def delete_user(self, name: str) -> Plan:
        plan = Plan()
        plan.run(["pw", "userdel", name])
        return plan

    def delete_group(self, name: str) -> Plan:
        plan = Plan()
        plan.run(["pw", "groupdel", name])
        return plan


def _free_id(used: set[int], also_used: set[int] | None = None) -> int:
    taken = used | (also_used or set())
    for candidate in range(DARWIN_FIRST_ID, DARWIN_LAST_ID + 1):
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free id between {DARWIN_FIRST_ID} and {DARWIN_LAST_ID}")


class Darwin(Platform):
    """``dscl .`` (the local Directory Services node)."""

    name = "darwin"

    def id_range(self, kind: str) -> tuple[int, int] | None:
        return DARWIN_FIRST_ID, DARWIN_LAST_ID

    def add_group(self, name: str, gid: int | None, view: SystemView) -> Plan:
        plan = Plan()
        if gid is None:
            gid = _free_id(view.used_gids())
        path = f"/Groups/{name}"
        plan.run(["dscl", ".", "-create", path])
        plan.run(["dscl", ".", "-create", path, "PrimaryGroupID", str(gid)])
        plan.run(["dscl", ".", "-create", path, "Password", "*"])
        return plan

    def add_user(self, name: str, user: dict[str, Any], view: SystemView) -> Plan:
        plan = Plan()
        uid = _get(user, "uid")
        if uid is None:
            uid = _free_id(view.used_uids())
        group = _get(user, "group")
        gid: int | None
        if group is None:
            gid = view.group("nogroup")
            gid = -1 if gid is None else gid
        else:
            gid = view.group(str(group))
            if gid is None:
                raise ValueError(f"user {name}: group {group!r} does not exist")
        home = _get(user, "home_dir") or NO_HOME
        path = f"/Users/{name}"
        plan.run(["dscl", ".", "-create", path])
        attrs = [("UniqueID", str(uid)), ("PrimaryGroupID", str(gid)),
                 ("NFSHomeDirectory", str(home)),
                 ("UserShell", str(_get(user, "shell") or "/usr/bin/false")),
                 ("RealName", str(_get(user, "description") or name)),
                 ("Password", "*"), ("IsHidden", "1")]
        for attr, value in attrs:
            plan.run(["dscl", ".", "-create", path, attr, value])
        if _get(user, "password") is not None:
            plan.warnings.append(f"user {name}: macOS cannot take an encrypted password; "
                                 "the account was created without one (login disabled)")
        if user.get("create_home") and home != NO_HOME:
            plan.run(["mkdir", "-p", str(home)])
            plan.run(["chown", f"{uid}:{gid}", str(home)])
            plan.run(["chmod", "0750", str(home)])
        return plan

    def delete_user(self, name: str) -> Plan:
        plan = Plan()
        plan.run(["dscl", ".", "-delete", f"/Users/{name}"])
        return plan

    def delete_group(self, name: str) -> Plan:
        plan = Plan()
        plan.run(["dscl", ".", "-delete", f"/Groups/{name}"])
        return plan


PLATFORMS: dict[str, Callable[[], Platform]] = {
    "linux": Platform, "freebsd": FreeBSD, "darwin": Darwin,
}


def for_platform(name: str | None = None) -> Platform:
    """The account tools of ``name`` (a ``sys.platform`` value; default: this system)."""
    key = name or sys.platform
    for prefix, factory in PLATFORMS.items():
        if key.startswith(prefix):
            return factory()
    raise ValueError(f"creating users and groups is not supported on {key!r} "
                     f"(supported: {', '.join(PLATFORMS)}); deploy with "
                     "--force-disable-user-change")
