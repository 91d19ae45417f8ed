"""The parts of ``procmgmt image``: the file tree, layers, accounts, the closure's rules."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from procmgmt.errors import UsageError
from procmgmt.image import accounts, closure, layer
from procmgmt.image.build import parse_name, parse_user
from procmgmt.image.roots import command_words
from procmgmt.image.tree import Tree
from procmgmt.model.credentials import Credentials, Group, User
from tests.conftest import golden_settings


def test_tree_refuses_two_contents_for_one_path() -> None:
    tree = Tree()
    tree.file("/etc/x", b"one", origin="first")
    tree.file("/etc/x", b"one", origin="again, the same")
    with pytest.raises(UsageError, match=r"/etc/x is wanted twice.*\(first\).*\(second\)"):
        tree.file("/etc/x", b"two", origin="second")


def test_tree_explicit_directory_replaces_implied_parent() -> None:
    tree = Tree()
    tree.file("/var/log/app/x", b"")
    tree.directory("/var/log/app", 0o700, 42, 42)
    entry = tree.get("/var/log/app")
    assert entry is not None and (entry.mode, entry.uid) == (0o700, 42)
    assert [p for p, _ in tree.items()] == ["/var", "/var/log", "/var/log/app",
                                           "/var/log/app/x"]


def test_tree_refuses_a_path_below_a_file() -> None:
    tree = Tree()
    tree.file("/etc/x", b"")
    with pytest.raises(UsageError, match="is a file"):
        tree.file("/etc/x/y", b"")


def test_layer_is_reproducible_and_normalised() -> None:
    def build() -> layer.Layer:
        tree = Tree()
        tree.directory("/srv", 0o750, 7, 8)
        tree.file("/srv/b", b"bee", 0o600, 7, 8)
        tree.symlink("/srv/a", "b")
        return layer.write_layer(tree)

    one, two = build(), build()
    assert one == two
    raw = gzip.decompress(one.blob)
    assert layer.sha256(raw) == one.diff_id
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["srv", "srv/a", "srv/b"]
    assert {(m.mtime, m.uname, m.gname) for m in members} == {(0, "", "")}
    assert [(m.uid, m.gid, m.mode) for m in members] == [(7, 8, 0o750), (0, 0, 0o777),
                                                         (7, 8, 0o600)]


def test_privileged_accounts_have_fixed_ids() -> None:
    creds = [Credentials(groups={"web": Group()}, users={"web": User(group="web")}),
             Credentials(groups={"db": Group(gid=20001)},
                         users={"db": User(uid=20001, group="db", home_dir="/srv/db",
                                           create_home=True), "extra": User()})]
    accts = accounts.privileged(creds, golden_settings(privileged=True))
    assert accts.passwd().decode().splitlines() == [
        "root:x:0:0:root:/root:/bin/sh",
        "db:x:20001:20001::/srv/db:/usr/sbin/nologin",
        "extra:x:10000:10000::/dev/null:/usr/sbin/nologin",
        "web:x:10001:10001::/dev/null:/usr/sbin/nologin",
    ]
    assert accts.group().decode().splitlines() == [
        "root:x:0:", "extra:x:10000:", "web:x:10001:", "db:x:20001:"]
    assert accts.homes == (("/srv/db", 20001, 20001),)


def test_accounts_refuse_an_undeclared_group() -> None:
    creds = [Credentials(users={"web": User(group="www")})]
    with pytest.raises(UsageError, match="user web has group 'www'"):
        accounts.privileged(creds, golden_settings(privileged=True))


def test_unprivileged_accounts() -> None:
    assert accounts.unprivileged(4242, 4243).passwd().decode().splitlines()[1] == \
        "procmgmt:x:4242:4243:procmgmt image:/:/usr/sbin/nologin"
    assert accounts.unprivileged(0, 0).passwd() == b"root:x:0:0:root:/root:/bin/sh\n"


def test_command_words() -> None:
    code = "\n".join([
        "exec 2>&1",
        "exec s6-notifyoncheck -d ./data/start",
        "if command -v setpriv >/dev/null 2>&1; then",
        '    set -- setpriv --reuid=x -- "$@"',
        "fi",
        'procmgmt_out=$(nc -z -w 2 "$1" "$2" | grep -q x)',
        "LC_ALL=C sort file && echo done",
        'echo "words in a message are no commands"',
    ])
    assert sorted(set(command_words(code))) == [
        "echo", "grep", "nc", "s6-notifyoncheck", "setpriv", "sort"]


@pytest.mark.parametrize(("text", "parsed"), [("4242", (4242, 4242)), ("1:2", (1, 2))])
def test_parse_user(text: str, parsed: tuple[int, int]) -> None:
    assert parse_user(text) == parsed


@pytest.mark.parametrize("text", ["web", "1:x", "-1", ""])
def test_parse_user_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="--user"):
        parse_user(text)


def test_parse_name() -> None:
    assert parse_name("procmgmt") == ("procmgmt", "latest")
    assert parse_name("my/web-apps:v1.2") == ("my/web-apps", "v1.2")
    with pytest.raises(UsageError, match="--name"):
        parse_name("Web:1")


def test_missing_library_names_the_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """ldd's "not found" is an error naming the program and the library."""
    import subprocess

    def fake_run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 0, "\tlibgone.so.1 => not found\n", "")

    monkeypatch.setattr(closure, "_run", fake_run)
    finder = closure.Finder("/usr/bin:/bin")
    with pytest.raises(closure.ClosureError,
                       match=r"/bin/sleep: needs shared library libgone.so.1"):
        finder.add("/bin/sleep", "test")


def test_named_files_skip_the_images_own_paths() -> None:
    finder = closure.Finder("/usr/bin:/bin", skip_prefixes=["/var/log"])
    assert not finder.named_file("/etc/passwd", "x")
    assert not finder.named_file("/proc/self/status", "x")
    assert not finder.named_file("/var/log/anything", "x")
    assert not finder.named_file("/nonexistent/file", "x")
    assert finder.named_file("/etc/hostname", "x")
    assert "/etc/hostname" in finder.closure.files


def test_symlinks_on_the_way_are_carried() -> None:
    finder = closure.Finder("/usr/bin:/bin")
    found = finder.executable("sh", "test", data_files=False)
    real = finder.closure.files
    assert found in ("/usr/bin/sh", "/usr/local/bin/sh", "/bin/sh")
    assert any(p.endswith("/dash") or p.endswith("/sh") for p in real)
    assert "/usr/bin/sh" in finder.closure.symlinks or "/bin" in finder.closure.symlinks \
        or found in real
