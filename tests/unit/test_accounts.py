"""Users and groups across switches, against a fake account database.

The fake executes the Linux commands procmgmt plans (groupadd, useradd,
userdel, groupdel) on in-memory tables, including userdel's habit of
deleting the user's namesake group, so the create/delete logic is checked
without root. The FreeBSD and macOS command plans are compared with the
exact commands. Real accounts are exercised by tests/e2e/test_root.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from procmgmt.accounts_platform import Command, Darwin, FreeBSD, Platform, SystemView, for_platform
from procmgmt.cli.chainload import drop_to, lookup
from procmgmt.deploy import accounts
from procmgmt.deploy.accounts import Accounts, Record, diff, record_path
from procmgmt.deploy.build import build, evaluate
from procmgmt.errors import DeployError, UsageError, ValidationError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings, resolve
from tests.conftest import golden_settings


class FakeSystem(SystemView):
    """In-memory passwd/group tables that understand the Linux account commands."""

    def __init__(self) -> None:
        self.users: dict[str, tuple[int, int]] = {"root": (0, 0)}
        self.groups: dict[str, int] = {"root": 0}
        self.commands: list[tuple[str, ...]] = []
        self.fail: set[str] = set()
        self._next = 900

    def user(self, name: str) -> tuple[int, int] | None:
        return self.users.get(name)

    def group(self, name: str) -> int | None:
        return self.groups.get(name)

    def used_uids(self) -> set[int]:
        return {u for u, _ in self.users.values()}

    def used_gids(self) -> set[int]:
        return set(self.groups.values())

    def user_by_id(self, uid: int) -> str | None:
        return next((n for n, (u, _) in self.users.items() if u == uid), None)

    def group_by_id(self, gid: int) -> str | None:
        return next((n for n, g in self.groups.items() if g == gid), None)

    def _id(self) -> int:
        self._next += 1
        return self._next

    def run(self, cmd: Command) -> None:
        """Apply one command like shadow-utils would."""
        argv = cmd.argv
        self.commands.append(argv)
        if argv[0] in self.fail:
            raise DeployError(f"{argv[0]} failed")
        name = argv[-1]
        opts = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1)
                if argv[i] in ("-u", "-g", "-c", "-d", "-s", "-p")}
        if argv[0] == "groupadd":
            assert name not in self.groups
            self.groups[name] = int(opts["-g"]) if "-g" in opts else self._id()
        elif argv[0] == "useradd":
            assert name not in self.users
            if "-g" in opts:
                gid = self.groups[opts["-g"]]
            else:  # USERGROUPS_ENAB: a namesake group
                gid = self.groups[name] = self._id()
            self.users[name] = (int(opts["-u"]) if "-u" in opts else self._id(), gid)
        elif argv[0] == "userdel":
            _, gid = self.users.pop(name)
            if self.groups.get(name) == gid and not any(
                    g == gid for g in (u[1] for u in self.users.values())):
                del self.groups[name]
        elif argv[0] == "groupdel":
            del self.groups[name]
        else:
            raise AssertionError(f"unexpected command {argv}")


class LinuxRange(Platform):
    """The Linux commands, with a fixed system id range (not this machine's login.defs)."""

    def id_range(self, kind: str) -> tuple[int, int] | None:
        return 900, 999


def settings_for(tmp_path: Path, privileged: bool = True, profile: str = "processes") -> Settings:
    """Golden settings whose procmgmt dir (holding the record) is under tmp_path."""
    return dataclasses.replace(golden_settings(privileged=privileged), lib_dir=str(tmp_path),
                               profile=profile)


def gen(*procs: tuple[str, dict[str, Any]], built_disabled: bool = False) -> Generation:
    """A generation of processes (name, credentials dict)."""
    return Generation(
        backend="sysvinit", path="",
        processes=tuple(DeployedProcess(name=n, hash=n, path="", rank=0, credentials=c)
                        for n, c in procs),
        settings={"force_disable_user_change": built_disabled})


def user(**kw: Any) -> dict[str, Any]:
    """A user credentials dict as the manifest stores it."""
    base = {"uid": None, "group": None, "description": None, "home_dir": "/dev/null",
            "shell": None, "password": None, "create_home": False, "create_home_only": False}
    return {**base, **kw}


def webapp(name: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    """A process with a user and group named after it (like the webapps example)."""
    return name, {"groups": {name: {"gid": kw.pop("gid", None)}},
                  "users": {name: user(group=name, description=f"Test webapp {name}", **kw)}}


def make(tmp_path: Path, fake: FakeSystem, privileged: bool = True,
         profile: str = "processes") -> tuple[Accounts, list[str]]:
    """An Accounts on the fake system; the list collects what it says."""
    said: list[str] = []
    acc = Accounts(settings_for(tmp_path, privileged, profile), said.append,
                   platform=LinuxRange(), view=fake, run=fake.run)
    return acc, said


def test_diff_names_new_obsolete_and_unchanged_accounts() -> None:
    """The diff of two generations is by name; home-only users are not accounts."""
    old = gen(webapp("webapp"), webapp("webapp1"))
    new = gen(webapp("webapp1"), webapp("webapp2"),
              ("h", {"users": {"homeonly": user(create_home_only=True, home_dir="/srv/h")}}))
    d = diff(old, new)
    assert d.new_groups == ("webapp2",) and d.new_users == ("webapp2",)
    assert d.obsolete_groups == ("webapp",) and d.obsolete_users == ("webapp",)
    assert d.unchanged_groups == ("webapp1",) and d.unchanged_users == ("webapp1",)
    assert diff(None, old).new_users == ("webapp", "webapp1")


def test_create_runs_groupadd_then_useradd_with_every_property(tmp_path: Path) -> None:
    """Groups come first (users name them); useradd gets -u -g -c -d -s, --system and
    --no-create-home unless create_home. An id not declared is chosen by procmgmt:
    the highest free one of the system range."""
    fake = FakeSystem()
    acc, said = make(tmp_path, fake)
    new = gen(webapp("a", uid=2001, gid=2001, shell="/usr/sbin/nologin"),
              webapp("b", create_home=True, home_dir=str(tmp_path / "home-b")))
    acc.create(None, new)
    assert fake.commands == [
        ("groupadd", "--system", "-g", "2001", "a"),
        ("groupadd", "--system", "-g", "999", "b"),
        ("useradd", "--system", "-u", "2001", "-g", "a", "-c", "Test webapp a", "-d",
         "/dev/null", "-s", "/usr/sbin/nologin", "--no-create-home", "a"),
        ("useradd", "--system", "-u", "999", "-g", "b", "-c", "Test webapp b", "-d",
         str(tmp_path / "home-b"), "--create-home", "b"),
    ]
    assert fake.users["a"] == (2001, 2001)
    assert "created user a (uid 2001)" in said


def test_create_leaves_existing_accounts_alone_and_warns_on_id_mismatch(tmp_path: Path) -> None:
    """An existing account is not touched; a different requested uid/gid is a warning."""
    fake = FakeSystem()
    fake.groups["web"] = 500
    fake.users["web"] = (500, 500)
    acc, said = make(tmp_path, fake)
    acc.create(None, gen(webapp("web", uid=2001, gid=2002)))
    assert fake.commands == []
    assert fake.users["web"] == (500, 500)
    assert ("warning: user web exists with uid 500, not the requested 2001; "
            "the existing uid is kept") in said
    assert any(line.startswith("warning: group web exists with gid 500") for line in said)
    # Already declared by the old generation: no warning on every switch.
    said.clear()
    acc.create(gen(webapp("web", uid=2001, gid=2002)), gen(webapp("web", uid=2001, gid=2002)))
    assert said == []


def test_record_lists_created_accounts_with_ids_and_profiles(tmp_path: Path) -> None:
    """accounts.json records what procmgmt created (not pre-existing accounts)."""
    fake = FakeSystem()
    fake.users["old"] = (600, 0)
    acc, _ = make(tmp_path, fake)
    acc.create(None, gen(webapp("web", uid=2001, gid=2002),
                         ("o", {"users": {"old": user()}})))
    data = json.loads(Path(record_path(acc.settings)).read_text())
    assert data["users"] == {"web": {"id": 2001, "profiles": ["processes"]}}
    assert data["groups"] == {"web": {"id": 2002, "profiles": ["processes"]}}


def test_switch_deletes_only_obsolete_accounts_procmgmt_created(tmp_path: Path) -> None:
    """webapp goes, webapp1 stays, and a pre-existing account dropped from the model
    is never deleted."""
    fake = FakeSystem()
    fake.users["legacy"] = (700, 0)
    acc, said = make(tmp_path, fake)
    legacy = ("l", {"users": {"legacy": user()}})
    first = gen(webapp("webapp"), webapp("webapp1"), legacy)
    acc.create(None, first)
    second = gen(webapp("webapp1"), webapp("webapp2"))
    acc.create(first, second)
    fake.commands.clear()
    acc.delete(first, second)
    assert fake.commands == [("userdel", "webapp")]  # its namesake group went with it
    assert set(fake.users) == {"root", "legacy", "webapp1", "webapp2"}
    assert "webapp" not in fake.groups
    assert "deleted user webapp (its files and home directory stay)" in said
    rec = Record.load(record_path(acc.settings))
    assert rec.names("users") == ["webapp1", "webapp2"]
    assert rec.names("groups") == ["webapp1", "webapp2"]


def test_undeploy_deletes_every_created_account_and_groupdel_when_needed(
        tmp_path: Path) -> None:
    """Deleting to the empty generation removes users, then groups userdel left."""
    fake = FakeSystem()
    acc, _ = make(tmp_path, fake)
    first = gen(("p", {"groups": {"shared": {"gid": None}},
                       "users": {"svc": user(group="shared")}}))
    acc.create(None, first)
    fake.commands.clear()
    acc.delete(first, gen())
    assert fake.commands == [("userdel", "svc"), ("groupdel", "shared")]
    assert set(fake.users) == {"root"} and set(fake.groups) == {"root"}


def test_namesake_group_still_needed_is_recreated_after_userdel(tmp_path: Path) -> None:
    """userdel removes the user's namesake group; one the new generation still
    declares is put back with its gid."""
    fake = FakeSystem()
    acc, said = make(tmp_path, fake)
    first = gen(webapp("web"))
    acc.create(None, first)
    gid = fake.groups["web"]
    second = gen(("p", {"groups": {"web": {"gid": None}}, "users": {}}))
    acc.delete(first, second)
    assert "web" not in fake.users
    assert fake.groups["web"] == gid
    assert any(line.startswith("re-created group web") for line in said)


def test_accounts_shared_by_two_profiles_stay_until_both_drop_them(tmp_path: Path) -> None:
    """The record knows which profiles use an account; the last one deletes it."""
    fake = FakeSystem()
    one, _ = make(tmp_path, fake, profile="one")
    two, _ = make(tmp_path, fake, profile="two")
    g = gen(webapp("web"))
    one.create(None, g)
    two.create(None, g)
    one.delete(g, gen())
    assert "web" in fake.users
    two.delete(g, gen())
    assert "web" not in fake.users


def test_account_recreated_by_someone_else_is_not_deleted(tmp_path: Path) -> None:
    """A uid that differs from the one procmgmt created means another owner: keep it."""
    fake = FakeSystem()
    acc, said = make(tmp_path, fake)
    g = gen(("p", {"users": {"svc": user()}}))
    acc.create(None, g)
    fake.users["svc"] = (4242, 0)
    fake.commands.clear()
    acc.delete(g, gen())
    assert fake.commands == [] and "svc" in fake.users
    assert any("not deleting user svc: its uid is 4242" in line for line in said)
    assert Record.load(record_path(acc.settings)).names("users") == []


def test_failed_deletion_is_a_warning_and_retried(tmp_path: Path) -> None:
    """The switch already succeeded: a failing userdel warns and stays recorded."""
    fake = FakeSystem()
    acc, said = make(tmp_path, fake)
    g = gen(("p", {"users": {"svc": user()}}))
    acc.create(None, g)
    fake.fail.add("userdel")
    acc.delete(g, gen())
    assert any(line.startswith("warning: could not delete user svc") for line in said)
    assert Record.load(record_path(acc.settings)).claimed_by("users", "processes") == ["svc"]
    fake.fail.clear()
    acc.delete(gen(), gen())  # the next switch retries
    assert "svc" not in fake.users


def test_failed_creation_deletes_what_it_created(tmp_path: Path) -> None:
    """A failing useradd stops the switch before anything starts, and the group it
    did create is deleted again at once (not left for a later switch)."""
    fake = FakeSystem()
    fake.fail.add("useradd")
    acc, _ = make(tmp_path, fake)
    with pytest.raises(DeployError, match="useradd failed"):
        acc.create(None, gen(webapp("web")))
    assert "web" not in fake.groups
    assert fake.commands[-1] == ("groupdel", "web")
    rec = Record.load(record_path(acc.settings))
    assert rec.names("groups") == [] and rec.remembered("groups", "web") == 999


def test_deleted_account_comes_back_with_its_ids(tmp_path: Path) -> None:
    """The id map keeps the ids of deleted accounts: a redeploy re-creates them with
    the same uid/gid, even when the system would now hand out others; and a new
    account never gets an id remembered for another name."""
    fake = FakeSystem()
    acc, said = make(tmp_path, fake)
    g = gen(webapp("web"))
    acc.create(None, g)
    assert fake.users["web"] == (999, 999)
    acc.delete(g, gen())
    assert "web" not in fake.users and "web" not in fake.groups
    other = gen(webapp("other"))
    acc.create(None, other)  # free: 999 is the highest, but remembered for web
    assert fake.users["other"] == (998, 998)
    acc.create(other, gen(webapp("other"), webapp("web")))
    assert fake.users["web"] == (999, 999)
    assert "created user web (uid 999)" in said
    data = json.loads(Path(record_path(acc.settings)).read_text())
    assert data["format"] == 2
    assert data["ids"] == {"users": {"web": 999, "other": 998},
                           "groups": {"web": 999, "other": 998}}


def test_remembered_id_taken_by_another_account_fails_before_creating(
        tmp_path: Path) -> None:
    """When the uid a deleted account had now belongs to someone else, the switch
    fails naming that account, and creates nothing (not even the free group)."""
    fake = FakeSystem()
    acc, _ = make(tmp_path, fake)
    g = gen(webapp("web"))
    acc.create(None, g)
    acc.delete(g, gen())
    fake.users["intruder"] = (999, 0)
    fake.commands.clear()
    with pytest.raises(DeployError, match=r"user web needs uid 999 .* now belongs to "
                                          r"user intruder"):
        acc.check(g)
    with pytest.raises(DeployError, match="now belongs to user intruder"):
        acc.create(None, g)
    assert fake.commands == [] and "web" not in fake.groups


def test_declared_id_taken_is_reported_before_creating(tmp_path: Path) -> None:
    """A declared gid that another group has fails up front, naming the group."""
    fake = FakeSystem()
    fake.groups["staff"] = 2001
    acc, _ = make(tmp_path, fake)
    with pytest.raises(DeployError, match=r"group web needs gid 2001 \(declared in the "
                                          r"model\), but gid 2001 now belongs to group staff"):
        acc.create(None, gen(webapp("web", gid=2001)))
    assert fake.commands == []


def test_format_1_record_seeds_the_id_map(tmp_path: Path) -> None:
    """A record of the previous format keeps working: its ids become the map."""
    path = Path(record_path(settings_for(tmp_path)))
    path.parent.mkdir()
    path.write_text(json.dumps({"format": 1, "users": {"web": {"id": 990, "profiles": ["p"]}},
                                "groups": {}}))
    path.chmod(0o600)
    rec = Record.load(str(path))
    assert rec.remembered("users", "web") == 990 and rec.owner_of("users", 990) == "web"


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_record_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """Root deletes what the record lists: one that others could write is not used."""
    fake = FakeSystem()
    acc, _ = make(tmp_path, fake)
    g = gen(webapp("web"))
    acc.create(None, g)
    path = Path(record_path(acc.settings))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(mode)
    with pytest.raises(DeployError, match="writable by others"):
        acc.delete(g, gen())
    assert "web" in fake.users


def test_record_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    """accounts.json and its lock are 0600 also under umask 000."""
    fake = FakeSystem()
    acc, _ = make(tmp_path, fake)
    old = os.umask(0)
    try:
        acc.create(None, gen(webapp("web")))
    finally:
        os.umask(old)
    for p in (record_path(acc.settings), record_path(acc.settings) + ".lock"):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p


def test_unprivileged_touches_no_account_but_makes_home_dirs(tmp_path: Path) -> None:
    """With user changes disabled only create_home_only and create_home users'
    homes are created (owned by the deployer); no command runs, no record is made."""
    fake = FakeSystem()
    acc, said = make(tmp_path, fake, privileged=False)
    only, full, plain = tmp_path / "only", tmp_path / "full", tmp_path / "plain"
    g = gen(("p", {"groups": {"g": {"gid": None}}, "users": {
        "only": user(create_home_only=True, home_dir=str(only)),
        "full": user(create_home=True, home_dir=str(full)),
        "plain": user(home_dir=str(plain))}}))
    acc.create(None, g)
    acc.delete(g, gen())
    assert fake.commands == []
    assert only.is_dir() and full.is_dir() and not plain.exists()
    assert only.stat().st_uid == os.geteuid()
    assert not os.path.exists(record_path(acc.settings))
    assert f"created home directory {only}" in said


def test_privileged_home_only_user_gets_a_directory_and_no_account(tmp_path: Path) -> None:
    """create_home_only never makes an account, privileged or not."""
    fake = FakeSystem()
    acc, _ = make(tmp_path, fake)
    acc.create(None, gen(("p", {"users": {
        "h": user(create_home_only=True, home_dir=str(tmp_path / "h"))}})))
    assert fake.commands == [] and (tmp_path / "h").is_dir()


def test_generation_built_without_user_changes_creates_nothing(tmp_path: Path) -> None:
    """Its processes run as the deployer, so their accounts are not needed."""
    fake = FakeSystem()
    acc, _ = make(tmp_path, fake)
    acc.create(None, gen(webapp("web"), built_disabled=True))
    assert fake.commands == []


def test_freebsd_plan_uses_pw_with_password_on_stdin() -> None:
    """pw groupadd/useradd/userdel/groupdel; -H 0 keeps the hash out of argv."""
    bsd = FreeBSD()
    view = FakeSystem()
    assert bsd.add_group("web", 2001, view).commands == [
        Command(("pw", "groupadd", "web", "-g", "2001"))]
    plan = bsd.add_user("web", user(uid=2001, group="web", description="Web",
                                    home_dir="/var/web", shell="/bin/sh", password="$6$x",
                                    create_home=True), view)
    assert plan.commands == [Command(
        ("pw", "useradd", "web", "-u", "2001", "-g", "web", "-c", "Web", "-d", "/var/web",
         "-s", "/bin/sh", "-m", "-H", "0"), stdin="$6$x\n")]
    assert "$6$x" not in plan.commands[0].describe()
    assert bsd.delete_user("web").commands == [Command(("pw", "userdel", "web"))]
    assert bsd.delete_group("web").commands == [Command(("pw", "groupdel", "web"))]


def test_darwin_plan_uses_dscl_and_picks_free_ids() -> None:
    """dscl . -create per attribute; missing ids are the lowest free from 200."""
    mac = Darwin()
    view = FakeSystem()
    view.groups.update({"web": 300, "g200": 200})
    view.users["u200"] = (200, 0)
    assert [c.argv for c in mac.add_group("new", None, view).commands] == [
        ("dscl", ".", "-create", "/Groups/new"),
        ("dscl", ".", "-create", "/Groups/new", "PrimaryGroupID", "201"),
        ("dscl", ".", "-create", "/Groups/new", "Password", "*"),
    ]
    plan = mac.add_user("web", user(group="web", home_dir="/var/web", create_home=True,
                                    password="hash"), view)
    assert [c.argv for c in plan.commands] == [
        ("dscl", ".", "-create", "/Users/web"),
        ("dscl", ".", "-create", "/Users/web", "UniqueID", "201"),
        ("dscl", ".", "-create", "/Users/web", "PrimaryGroupID", "300"),
        ("dscl", ".", "-create", "/Users/web", "NFSHomeDirectory", "/var/web"),
        ("dscl", ".", "-create", "/Users/web", "UserShell", "/usr/bin/false"),
        ("dscl", ".", "-create", "/Users/web", "RealName", "web"),
        ("dscl", ".", "-create", "/Users/web", "Password", "*"),
        ("dscl", ".", "-create", "/Users/web", "IsHidden", "1"),
        ("mkdir", "-p", "/var/web"),
        ("chown", "201:300", "/var/web"),
        ("chmod", "0750", "/var/web"),
    ]
    assert plan.warnings and "without one" in plan.warnings[0]
    assert mac.delete_user("web").commands == [Command(("dscl", ".", "-delete", "/Users/web"))]
    assert mac.delete_group("web").commands == [
        Command(("dscl", ".", "-delete", "/Groups/web"))]


def test_platform_is_chosen_from_sys_platform() -> None:
    """linux, freebsd13 and darwin map to their tools; others are refused clearly."""
    assert type(for_platform("linux")) is Platform
    assert type(for_platform("freebsd13")) is FreeBSD
    assert type(for_platform("darwin")) is Darwin
    with pytest.raises(ValueError, match="--force-disable-user-change"):
        for_platform("win32")


MODEL = '''
from procmgmt import Credentials, Group, Instance, Process, User

def processes(settings):
    def p(name, **user):
        return Process(name=name, process="/bin/sleep", credentials=Credentials(
            groups={"shared": Group()}, users={name: User(group="shared", **user)}))
    return {"a": Instance(p("a")), "b": Instance(p("b", uid=1234))}
'''


def test_uids_and_gids_come_from_the_ids_file_unless_explicit(tmp_path: Path) -> None:
    """The manifest carries uid/gid from ids['uids'/'gids'] for same-named accounts;
    an explicit uid wins. Two processes sharing an identical group is fine."""
    model = tmp_path / "m.py"
    model.write_text(MODEL)
    settings = dataclasses.replace(
        resolve({"state_dir": str(tmp_path / "s"), "process_manager": "sysvinit"}, {}),
        ids={"uids": {"a": 2100, "b": 2101}, "gids": {"shared": 2200}})
    m, specs = evaluate(str(model), settings)
    g = build(m, specs, settings)
    creds = {p.name: p.credentials for p in g.processes}
    assert creds["a"]["users"]["a"]["uid"] == 2100
    assert creds["b"]["users"]["b"]["uid"] == 1234
    assert creds["a"]["groups"]["shared"]["gid"] == 2200


def test_differing_declarations_name_both_instances(tmp_path: Path) -> None:
    """The same user declared differently is a validation problem naming both."""
    model = tmp_path / "m.py"
    model.write_text(MODEL.replace('users={name: User', 'users={"same": User'))
    settings = resolve({"state_dir": str(tmp_path / "s")}, {})
    with pytest.raises(ValidationError) as exc:
        evaluate(str(model), settings)
    text = str(exc.value)
    assert "b.credentials.users.same: user 'same' is also declared by instance 'a'" in text
    assert "different uid" in text


def test_engine_calls_reach_the_module_functions(tmp_path: Path) -> None:
    """create_new/delete_obsolete (the engine's interface) do nothing unprivileged."""
    settings = settings_for(tmp_path, privileged=False)
    said: list[str] = []
    accounts.create_new(None, gen(webapp("web")), settings, said.append)
    accounts.delete_obsolete(gen(webapp("web")), gen(), settings, said.append)
    assert said == [] and not os.path.exists(record_path(settings))


# --- chainload-user ----------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "procmgmt", "chainload-user", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_chainload_unknown_user_is_one_line_exit_2() -> None:
    """An unknown user: exit 2, one error line, no traceback."""
    proc = _cli("no-such-user-pm", "--", "true")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "procmgmt: error: chainload-user: unknown user 'no-such-user-pm'"


def test_chainload_missing_command_exits_127() -> None:
    """A command that does not exist: exit 127 like a shell."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    proc = _cli(me, "--", "/nonexistent/pm-cmd")
    assert proc.returncode == 127 and "command not found" in proc.stderr


def test_chainload_to_self_needs_no_privileges() -> None:
    """Becoming the user one already is just execs."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    proc = _cli(me, "--", "sh", "-c", 'echo "$(id -u) $1"', "sh", "--not-an-option")
    assert proc.returncode == 0 and proc.stdout.split() == [str(os.geteuid()), "--not-an-option"]


@pytest.mark.root("switching users")
def test_chainload_as_root_drops_to_the_user_with_its_groups() -> None:
    """uid, gid and supplementary groups become the target user's (nobody here)."""
    nobody = lookup("nobody")
    proc = _cli("nobody", "--", "sh", "-c", "id -u; id -g; id -G")
    assert proc.returncode == 0, proc.stderr
    uid, gid, groups = proc.stdout.split("\n")[:3]
    assert (int(uid), int(gid)) == (nobody.pw_uid, nobody.pw_gid)
    assert "0" not in groups.split(), "root's supplementary groups were kept"


@pytest.mark.root("to become a non-root user first")
def test_chainload_non_root_cannot_switch_to_another_user() -> None:
    """A non-root caller asking for another user gets a UsageError (exit 2)."""
    pid = os.fork()
    if pid == 0:  # child: become nobody, then try to become root
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            drop_to(lookup("root"))
        except UsageError as exc:
            code = 0 if "only root can switch to user 'root'" in str(exc) else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


class RacedSystem(FakeSystem):
    """Another program creates account ``intruder`` with the id procmgmt planned,
    between procmgmt's plan and its first command (as a concurrent ``useradd
    --system`` would: it takes the highest free id too); a taken id fails like
    shadow-utils' "UID ... is not unique"."""

    def __init__(self) -> None:
        super().__init__()
        self.raced = False

    def run(self, cmd: Command) -> None:
        argv = cmd.argv
        if not self.raced and argv[0] == "groupadd":
            self.raced = True
            self.groups["intruder"] = int(argv[argv.index("-g") + 1])
        if argv[0] == "useradd" and "-u" in argv \
                and int(argv[argv.index("-u") + 1]) in self.used_uids():
            self.commands.append(argv)
            raise DeployError("useradd failed (exit status 4): UID is not unique")
        if argv[0] == "groupadd" and "-g" in argv \
                and int(argv[argv.index("-g") + 1]) in self.used_gids():
            self.commands.append(argv)
            raise DeployError("groupadd failed (exit status 4): GID is not unique")
        super().run(cmd)


def test_an_id_taken_between_plan_and_command_is_chosen_again(tmp_path: Path) -> None:
    fake = RacedSystem()
    acc, said = make(tmp_path, fake)
    acc.create(None, gen(webapp("b")))
    assert fake.commands[0] == ("groupadd", "--system", "-g", "999", "b")
    assert fake.groups["intruder"] == 999 and fake.groups["b"] == 998
    assert "gid 999 was taken meanwhile; choosing another for b" in said


def test_a_declared_id_taken_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    fake = RacedSystem()
    acc, _ = make(tmp_path, fake)
    with pytest.raises(DeployError, match="not unique"):
        acc.create(None, gen(webapp("a", uid=2001, gid=2001)))
    assert "a" not in fake.groups
