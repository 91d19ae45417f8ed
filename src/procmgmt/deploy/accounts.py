"""Users and groups of a generation: created before a switch starts anything, deleted after.

Each process's manifest entry lists the groups and users it needs
(:func:`procmgmt.deploy.build._credentials_json`, with uids/gids from the
ids file already filled in). The engine calls :func:`create_new` after
``init-state`` and before any process starts, and :func:`delete_obsolete`
once the switch has succeeded. Rules (nix-processmgmt §4.1, hardened):

* Create what the new generation declares and the system lacks: groups
  first (users name them as primary group), then users. An account that
  exists already is left alone; if the requested uid/gid differs, a warning
  says the existing one is kept.
* Ids are stable, as NixOS's ``/var/lib/nixos/uid-map`` keeps them: the
  record remembers the uid/gid of every account procmgmt ever created, and
  an account deleted (by undeploy) and declared again comes back with the
  same id, so the state it left (owned by that id) is its own again. A new
  account without a declared id gets the highest free system id that is
  not remembered for another name (chosen here, not by ``useradd``, which
  would hand out a remembered id first). When a remembered or declared id
  now belongs to another account, the switch fails before it creates,
  stops or starts anything, naming that account. If creating one account
  fails, those this switch already created are deleted again; and a switch
  that fails later removes the accounts it created in its undo
  (:func:`undo_created`).
* Only delete what procmgmt created. Every account this module creates is
  written to ``<procmgmt_dir>/accounts.json`` with its id and the profiles
  that use it; after a switch, an account claimed by this profile that the
  new generation no longer declares is released, and deleted when no other
  profile of the state dir still claims it and its id is still the one
  procmgmt created (someone may have deleted and re-created it since).
  Accounts that existed before procmgmt are never deleted. Because the
  record, not the previous generation, says what to delete, accounts left
  behind (by a switch killed half-way, or a failed deletion) are cleaned up
  by the next successful one.
* The record decides which accounts root deletes: it is written 0600 and
  read only when its owner is root (the deployer) and nobody else can write
  it (:meth:`Record.load`).
* Deletion never removes home or state directories (``userdel`` without
  ``-r``). ``userdel`` (and ``pw userdel``) also delete a group named like
  the user; if that group is still needed, it is re-created with its gid.
* With user changes disabled (``--force-disable-user-change``, and always
  for non-root users) no account is created or deleted. What survives of a
  ``create_home_only`` user, and of a ``create_home`` user reduced to its
  home as in the original, is its home directory, created owned by the
  deploying user.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import stat
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from procmgmt import fsutil
from procmgmt.accounts_platform import NO_HOME, Command, Plan, Platform, SystemView, for_platform
from procmgmt.errors import DeployError
from procmgmt.manifest import Generation
from procmgmt.settings import Settings

RECORD = "accounts.json"
#: 2: with ``ids`` (the uid/gid map); 1 had only the created accounts.
RECORD_FORMAT = 2
USERS = "users"
GROUPS = "groups"
IDS = "ids"

Say = Callable[[str], None]
Runner = Callable[[Command], None]


# --- what a generation declares -----------------------------------------------------

@dataclass(frozen=True)
class Declared:
    """The groups and users of a whole generation, by name (credentials dicts)."""

    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def accounts(self) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Users that are real accounts (not home-directory-only) and groups."""
        return {GROUPS: dict(self.groups),
                USERS: {n: u for n, u in self.users.items() if not u.get("create_home_only")}}


def declared(gen: Generation | None) -> Declared:
    """Union of the credentials of every process of ``gen`` (validation guarantees
    that two processes declaring the same name declare it identically)."""
    groups: dict[str, Mapping[str, Any]] = {}
    users: dict[str, Mapping[str, Any]] = {}
    for proc in gen.processes if gen is not None else ():
        for name, g in (proc.credentials.get(GROUPS) or {}).items():
            groups.setdefault(name, g)
        for name, u in (proc.credentials.get(USERS) or {}).items():
            users.setdefault(name, u)
    return Declared(groups, users)


@dataclass(frozen=True)
class Diff:
    """Account names by what a switch from ``old`` to ``new`` does to them."""

    new_groups: tuple[str, ...] = ()
    new_users: tuple[str, ...] = ()
    obsolete_groups: tuple[str, ...] = ()
    obsolete_users: tuple[str, ...] = ()
    unchanged_groups: tuple[str, ...] = ()
    unchanged_users: tuple[str, ...] = ()


def diff(old: Generation | None, new: Generation) -> Diff:
    """What ``new`` adds, drops and keeps relative to ``old`` (by name; home-only
    users are not accounts and do not count)."""
    a, b = declared(old).accounts(), declared(new).accounts()

    def split(kind: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        before, after = set(a[kind]), set(b[kind])
        return (tuple(sorted(after - before)), tuple(sorted(before - after)),
                tuple(sorted(after & before)))

    ng, og, ug = split(GROUPS)
    nu, ou, uu = split(USERS)
    return Diff(ng, nu, og, ou, ug, uu)


def home_only_dirs(gen: Generation | None, privileged: bool) -> list[str]:
    """Home directories to create without an account: ``create_home_only`` users,
    and unprivileged also ``create_home`` users (reduced to their home)."""
    dirs = []
    for user in declared(gen).users.values():
        home = user.get("home_dir") or NO_HOME
        wanted = user.get("create_home_only") or (not privileged and user.get("create_home"))
        if wanted and home != NO_HOME:
            dirs.append(str(home))
    return sorted(set(dirs))


def user_changes_enabled(settings: Settings, gen: Generation | None) -> bool:
    """Accounts are managed only when users may change, for the deployment and for the
    generation (one built with user changes disabled runs nothing as another user)."""
    built_disabled = bool(gen is not None and gen.settings.get("force_disable_user_change"))
    return settings.privileged and not built_disabled


# --- the record of what procmgmt created --------------------------------------------

class Record:
    """``accounts.json``: the accounts procmgmt created (ids and claiming profiles), and
    the ids of every account it ever created (``ids``, kept after deletion)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data: dict[str, dict[str, dict[str, Any]]] = {USERS: {}, GROUPS: {}}
        self.ids: dict[str, dict[str, int]] = {USERS: {}, GROUPS: {}}

    @classmethod
    def load(cls, path: str) -> Record:
        """Read the record (empty when there is none); refuse one that someone else
        than its owner (root, or the deployer) could have written."""
        rec = cls(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return rec
        except OSError as exc:
            raise DeployError(f"{path}: cannot read the record of created accounts: "
                              f"{exc.strerror or exc}; it must be a regular file") from None
        with open(fd, encoding="utf-8") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                raise DeployError(
                    f"{path}: the record of created accounts is writable by others "
                    f"(owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}), so "
                    "anyone could have chosen which accounts procmgmt deletes; check its "
                    "entries, then make it yours and 0600 (chown, chmod 600)")
            try:
                raw = json.load(f)
            except (OSError, ValueError) as exc:
                raise DeployError(f"{path}: cannot read the record of created accounts: "
                                  f"{exc}; fix or remove it (procmgmt then deletes no "
                                  "account it created before)") from None
        for kind in (USERS, GROUPS):
            rec.data[kind] = {str(k): dict(v) for k, v in (raw.get(kind) or {}).items()}
            ids = (raw.get(IDS) or {}).get(kind) or {}
            rec.ids[kind] = {str(k): int(v) for k, v in ids.items()}
            for name, entry in rec.data[kind].items():  # format 1 had no map
                if isinstance(entry.get("id"), int):
                    rec.ids[kind].setdefault(name, entry["id"])
        return rec

    def save(self) -> None:
        """Write atomically, 0600."""
        text = json.dumps({"format": RECORD_FORMAT, **self.data, IDS: self.ids},
                          indent=2, sort_keys=True)
        fsutil.write_atomic(self.path, text + "\n", fsutil.PRIVATE, fsync=True)

    def created(self, kind: str, name: str, ident: int | None, profile: str) -> None:
        """Note that procmgmt created ``name`` (with id ``ident``) for ``profile``, and
        remember the id for good."""
        self.data[kind][name] = {"id": ident, "profiles": [profile]}
        if ident is not None:
            self.ids[kind][name] = ident

    def remembered(self, kind: str, name: str) -> int | None:
        """The id ``name`` had when procmgmt last created it (also after deletion)."""
        return self.ids[kind].get(name)

    def owner_of(self, kind: str, ident: int) -> str | None:
        """The name the id map gives ``ident`` to, if any."""
        return next((n for n, i in sorted(self.ids[kind].items()) if i == ident), None)

    def claim(self, kind: str, name: str, profile: str) -> None:
        """``profile`` uses an account procmgmt created (no-op for others)."""
        entry = self.data[kind].get(name)
        if entry is not None and profile not in entry["profiles"]:
            entry["profiles"] = sorted([*entry["profiles"], profile])

    def claimed_by(self, kind: str, profile: str) -> list[str]:
        """Names of created accounts that ``profile`` uses."""
        return sorted(n for n, e in self.data[kind].items() if profile in e["profiles"])

    def release(self, kind: str, name: str, profile: str) -> bool:
        """Drop ``profile``'s claim; True when no profile claims the account any more."""
        entry = self.data[kind][name]
        entry["profiles"] = [p for p in entry["profiles"] if p != profile]
        return not entry["profiles"]

    def forget(self, kind: str, name: str) -> None:
        """Remove an account from the record."""
        self.data[kind].pop(name, None)

    def ident(self, kind: str, name: str) -> int | None:
        """The id procmgmt created ``name`` with."""
        entry = self.data[kind].get(name)
        return None if entry is None else entry.get("id")

    def names(self, kind: str) -> list[str]:
        """Every recorded name of ``kind``."""
        return sorted(self.data[kind])


def record_path(settings: Settings) -> str:
    """Where the record lives (one per state dir, shared by its profiles)."""
    return os.path.join(settings.procmgmt_dir, RECORD)


@contextlib.contextmanager
def locked_record(settings: Settings) -> Iterator[Record]:
    """The record, locked against switches of other profiles, saved on exit."""
    path = record_path(settings)
    fsutil.ensure_dir(os.path.dirname(path))
    fd = fsutil.open_file(f"{path}.lock", fsutil.PRIVATE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        rec = Record.load(path)
        try:
            yield rec
        finally:
            rec.save()
    finally:
        os.close(fd)


# --- running the system's tools ----------------------------------------------------

def run_command(cmd: Command) -> None:
    """Run one account tool; a failure is a DeployError quoting its output."""
    try:
        proc = subprocess.run(cmd.argv, input=cmd.stdin, capture_output=True, text=True,
                              check=False, timeout=120)
    except OSError as exc:
        raise DeployError(f"cannot run {cmd.argv[0]}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().replace("\n", "; ")
        raise DeployError(f"{cmd.describe()} failed (exit status {proc.returncode})"
                          + (f": {detail}" if detail else ""))


class Accounts:
    """Creates and deletes the accounts of switches for one settings/profile."""

    def __init__(self, settings: Settings, say: Say, *, platform: Platform | None = None,
                 view: SystemView | None = None, run: Runner | None = None) -> None:
        self.settings = settings
        self.say = say
        self._platform = platform
        self.view = view or SystemView()
        self.run = run or run_command

    @property
    def platform(self) -> Platform:
        """The account tools (resolved only when an account is actually changed)."""
        if self._platform is None:
            try:
                self._platform = for_platform()
            except ValueError as exc:
                raise DeployError(str(exc)) from None
        return self._platform

    def _execute(self, plan: Plan) -> None:
        for warning in plan.warnings:
            self.say(f"warning: {warning}")
        for cmd in plan.commands:
            self.run(cmd)

    def _try(self, plan: Plan, action: str) -> bool:
        """Run a plan after the switch; a failure is a warning (the switch succeeded)."""
        try:
            self._execute(plan)
        except DeployError as exc:
            self.say(f"warning: could not {action}: {exc}")
            return False
        return True

    def make_homes(self, gen: Generation, privileged: bool) -> None:
        """Create home-directory-only entries (owned by whoever deploys)."""
        for home in home_only_dirs(gen, privileged):
            if not os.path.isdir(home):
                try:
                    fsutil.ensure_dir(home, 0o750)
                except OSError as exc:
                    raise DeployError(f"cannot create home directory {home}: "
                                      f"{exc.strerror or exc}") from None
                self.say(f"created home directory {home}")

    # -- create ---------------------------------------------------------------------

    def _missing(self, new: Generation) -> tuple[dict[str, Mapping[str, Any]],
                                                  dict[str, Mapping[str, Any]]]:
        """(groups, users) ``new`` declares that the system does not have."""
        want = declared(new).accounts()
        groups = {n: g for n, g in sorted(want[GROUPS].items()) if self.view.group(n) is None}
        users = {n: u for n, u in sorted(want[USERS].items()) if self.view.user(n) is None}
        return groups, users

    def plan_ids(self, rec: Record, new: Generation) -> dict[str, dict[str, int | None]]:
        """The id each missing account of ``new`` gets: declared, else remembered, else
        the highest free one of the system range that no other name has in the map
        (None: the tool chooses). Every id already used by another account is a
        DeployError naming that account: raised before anything was created."""
        groups, users = self._missing(new)
        ids: dict[str, dict[str, int | None]] = {GROUPS: {}, USERS: {}}
        problems: list[str] = []
        for kind, missing, word, used, owner in (
                (GROUPS, groups, "gid", self.view.used_gids(), self.view.group_by_id),
                (USERS, users, "uid", self.view.used_uids(), self.view.user_by_id)):
            taken = set(used)
            for name, entry in missing.items():
                declared_id = entry.get(word)
                ident = declared_id if declared_id is not None else rec.remembered(kind, name)
                if ident is None:
                    continue
                holder = owner(int(ident)) if int(ident) in used else None
                if holder is not None:
                    why = ("declared in the model" if declared_id is not None else
                           "the one procmgmt created it with before, which its files "
                           "still carry")
                    problems.append(
                        f"{kind[:-1]} {name} needs {word} {ident} ({why}), but "
                        f"{word} {ident} now belongs to {kind[:-1]} {holder}; give "
                        f"{holder} another {word} or remove it, or declare another "
                        f"{word} for {name} (and chown its files)")
                ids[kind][name] = int(ident)
                taken.add(int(ident))
            choose = [name for name in missing if name not in ids[kind]]
            id_range = self.platform.id_range(word) if choose else None
            reserved = taken | set(rec.ids[kind].values())
            for name in choose:
                ids[kind][name] = None
                if id_range is not None:
                    low, high = id_range
                    free = next((i for i in range(high, low - 1, -1) if i not in reserved),
                                None)
                    if free is None:
                        problems.append(f"no free {word} left between {low} and {high} "
                                        f"for {kind[:-1]} {name}")
                        continue
                    ids[kind][name] = free
                    reserved.add(free)
        if problems:
            raise DeployError("cannot create the accounts of the new generation: "
                              + "; ".join(problems))
        return ids

    def check(self, new: Generation) -> None:
        """Fail (DeployError) when an account ``new`` needs cannot get its id: to be
        called before a switch changes anything."""
        if not user_changes_enabled(self.settings, new):
            return
        rec = Record.load(record_path(self.settings))
        self.plan_ids(rec, new)

    def create(self, old: Generation | None, new: Generation) -> None:
        """Create the accounts ``new`` needs (before anything starts). If one cannot be
        created, those this call created are deleted again before the error goes on."""
        enabled = user_changes_enabled(self.settings, new)
        self.make_homes(new, enabled)
        if not enabled:
            return
        want = declared(new).accounts()
        had = declared(old).accounts()
        profile = self.settings.profile
        with locked_record(self.settings) as rec:
            ids = self.plan_ids(rec, new)
            made: list[tuple[str, str]] = []
            try:
                for name, g in sorted(want[GROUPS].items()):
                    gid = g.get("gid")
                    existing = self.view.group(name)
                    if existing is None:
                        ids = self._add(rec, new, ids, GROUPS, name, functools.partial(
                            self._group_command, name))
                        rec.created(GROUPS, name, self.view.group(name), profile)
                        made.append((GROUPS, name))
                        self.say(f"created group {name} (gid {self.view.group(name)})")
                        continue
                    rec.claim(GROUPS, name, profile)
                    if name not in had[GROUPS] and gid is not None and gid != existing:
                        self.say(f"warning: group {name} exists with gid {existing}, not the "
                                 f"requested {gid}; the existing gid is kept")
                for name, u in sorted(want[USERS].items()):
                    uid = u.get("uid")
                    found = self.view.user(name)
                    if found is None:
                        ids = self._add(rec, new, ids, USERS, name, functools.partial(
                            self._user_command, name, u))
                        now = self.view.user(name)
                        rec.created(USERS, name, now[0] if now else None, profile)
                        made.append((USERS, name))
                        self.say(f"created user {name} (uid {now[0] if now else '?'})")
                        continue
                    rec.claim(USERS, name, profile)
                    if name not in had[USERS] and uid is not None and uid != found[0]:
                        self.say(f"warning: user {name} exists with uid {found[0]}, not the "
                                 f"requested {uid}; the existing uid is kept")
            except DeployError:
                self._remove(rec, made)
                raise

    def _group_command(self, name: str, gid: int | None) -> Plan:
        return self.platform.add_group(name, gid, self.view)

    def _user_command(self, name: str, user: Mapping[str, Any], uid: int | None) -> Plan:
        return self.platform.add_user(name, {**user, "uid": uid}, self.view)

    def _add(self, rec: Record, new: Generation, ids: dict[str, dict[str, int | None]],
             kind: str, name: str, command: Callable[[int | None], Plan],
             attempts: int = 3) -> dict[str, dict[str, int | None]]:
        """Run the command that creates account ``name`` with its planned id; the ids
        (planned again when that was needed).

        An id procmgmt chose (neither declared nor remembered) was free when it
        was planned, but another program may create an account in between (an
        administrator's ``useradd --system`` takes the highest free id too): then
        the command fails with the id taken, and the id is planned again."""
        word = "gid" if kind == GROUPS else "uid"
        chosen = (declared(new).accounts()[kind][name].get(word) is None
                  and rec.remembered(kind, name) is None)
        for attempt in range(attempts):
            ident = ids[kind][name]
            try:
                self._execute(command(ident))
                return ids
            except DeployError:
                used = self.view.used_gids() if kind == GROUPS else self.view.used_uids()
                if not chosen or ident is None or ident not in used \
                        or attempt == attempts - 1:
                    raise
                self.say(f"{word} {ident} was taken meanwhile; choosing another for {name}")
                ids = self.plan_ids(rec, new)
        return ids

    def _remove(self, rec: Record, made: list[tuple[str, str]]) -> None:
        """Delete accounts just created (users first), for a switch that fails."""
        users = [n for kind, n in made if kind == USERS]
        groups = {n for kind, n in made if kind == GROUPS}
        for name in reversed(users):
            self._delete_user(rec, name, keep_namesake=name not in groups)
        for name in sorted(groups):
            self._delete_group(rec, name)

    def undo(self, old: Generation | None) -> None:
        """After a failed switch was undone: delete the accounts procmgmt created for
        this profile that ``old`` (running again) does not declare."""
        self.delete(None, old if old is not None else Generation("", "", ()))

    # -- delete ---------------------------------------------------------------------

    def delete(self, old: Generation | None, new: Generation | None) -> None:
        """Delete the accounts procmgmt created for this profile that ``new`` no
        longer declares (after the switch; None: it needs none any more). ``old`` is
        not consulted: the record says what this profile created, including
        leftovers of failed switches."""
        if not self.settings.privileged:
            return
        if not os.path.exists(record_path(self.settings)):
            return  # procmgmt never created an account here
        want = declared(new).accounts() if user_changes_enabled(self.settings, new) \
            else {GROUPS: {}, USERS: {}}
        profile = self.settings.profile
        with locked_record(self.settings) as rec:
            users = [n for n in rec.claimed_by(USERS, profile) if n not in want[USERS]]
            groups = [n for n in rec.claimed_by(GROUPS, profile) if n not in want[GROUPS]]
            dropping = {n for n in groups if rec.release(GROUPS, n, profile)}
            for name in users:
                if rec.release(USERS, name, profile):  # else another profile still uses it
                    self._delete_user(rec, name, keep_namesake=name not in dropping)
            for name in sorted(dropping):
                self._delete_group(rec, name)

    def _ours(self, rec: Record, kind: str, name: str, current: int | None) -> bool:
        """True when ``name`` still is the account procmgmt created (same id); forgets
        it otherwise."""
        recorded = rec.ident(kind, name)
        if current is None:
            rec.forget(kind, name)
            return False
        if recorded is not None and current != recorded:
            what = "uid" if kind == USERS else "gid"
            self.say(f"warning: not deleting {kind[:-1]} {name}: its {what} is {current}, "
                     f"not the {recorded} procmgmt created it with")
            rec.forget(kind, name)
            return False
        return True

    def _delete_user(self, rec: Record, name: str, keep_namesake: bool) -> None:
        found = self.view.user(name)
        if not self._ours(rec, USERS, name, found[0] if found else None):
            return
        namesake = self.view.group(name)
        if not self._try(self.platform.delete_user(name),
                         f"delete user {name} (retried after the next switch)"):
            rec.claim(USERS, name, self.settings.profile)
            return
        rec.forget(USERS, name)
        self.say(f"deleted user {name} (its files and home directory stay)")
        lost = namesake is not None and self.view.group(name) is None
        # userdel takes a group named like the user along; put back one still needed.
        if lost and keep_namesake and self._try(
                self.platform.add_group(name, namesake, self.view),
                f"re-create group {name} (gid {namesake})"):
            self.say(f"re-created group {name} (gid {namesake}), which userdel removed "
                     "along with the user")

    def _delete_group(self, rec: Record, name: str) -> None:
        existing = self.view.group(name)
        if existing is None:
            rec.forget(GROUPS, name)  # userdel removed it along with its namesake user
            self.say(f"deleted group {name}")
            return
        if not self._ours(rec, GROUPS, name, existing):
            return
        if not self._try(self.platform.delete_group(name),
                         f"delete group {name} (retried after the next switch)"):
            rec.claim(GROUPS, name, self.settings.profile)
            return
        rec.forget(GROUPS, name)
        self.say(f"deleted group {name}")


def create_new(old: Generation | None, new: Generation, settings: Settings,
               say: Callable[[str], None]) -> None:
    """Create the users and groups ``new`` needs that the system does not have."""
    Accounts(settings, say).create(old, new)


def delete_obsolete(old: Generation | None, new: Generation | None, settings: Settings,
                    say: Callable[[str], None]) -> None:
    """Delete the users and groups procmgmt created that ``new`` no longer needs."""
    Accounts(settings, say).delete(old, new)


def check_ids(new: Generation, settings: Settings) -> None:
    """Fail before a switch changes anything when an account of ``new`` cannot get
    its id (remembered or declared, now another account's)."""
    Accounts(settings, lambda line: None).check(new)


def undo_created(old: Generation | None, settings: Settings,
                 say: Callable[[str], None]) -> None:
    """A failed switch put ``old`` back: remove the accounts it created for ``new``."""
    try:
        Accounts(settings, say).undo(old)
    except DeployError as exc:
        say(f"  could not remove the accounts the failed switch created: {exc}")
