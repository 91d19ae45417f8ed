"""procmgmt.fsutil: exact modes whatever the umask, and no symlink followed.

Every check runs under umask 000 and 077: a mode that only comes out right
thanks to the umask fails one of them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt import fsutil
from procmgmt.errors import DeployError, UnsafePathError


@pytest.fixture(params=[0o000, 0o077], ids=["umask000", "umask077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run the test under each umask."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    """Permission bits of ``path`` itself."""
    return stat.S_IMODE(path.lstat().st_mode)


def test_ensure_dir_sets_exact_modes_on_what_it_creates(tmp_path: Path, umask: int) -> None:
    """The directory gets its mode, every missing parent 0755; existing ones are kept."""
    (tmp_path / "a").mkdir(mode=0o700)
    os.chmod(tmp_path / "a", 0o700)
    target = tmp_path / "a" / "b" / "c" / "tmp"
    created = fsutil.ensure_dir(str(target), fsutil.STICKY_DIR)
    assert created == [str(tmp_path / "a" / "b"), str(tmp_path / "a" / "b" / "c"), str(target)]
    assert mode(target) == 0o1777
    assert mode(tmp_path / "a" / "b") == mode(tmp_path / "a" / "b" / "c") == 0o755
    assert mode(tmp_path / "a") == 0o700, "an existing directory is left as it is"
    assert fsutil.ensure_dir(str(target)) == []
    assert mode(target) == 0o1777
    fsutil.ensure_dir(str(target), 0o750, enforce=True)
    assert mode(target) == 0o750


def test_ensure_dir_refuses_a_symlink_where_it_enforces(tmp_path: Path, umask: int) -> None:
    """A symlink in place of a directory procmgmt owns is an error naming it; a symlink
    to a directory the caller chose (like /var/run) is used as it is."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    assert fsutil.ensure_dir(str(link)) == []
    before = mode(real)
    with pytest.raises(UnsafePathError, match=f"{link} is a symbolic link"):
        fsutil.ensure_dir(str(link), 0o700, enforce=True)
    assert mode(real) == before
    (tmp_path / "file").write_text("")
    with pytest.raises(DeployError, match="is not a directory"):
        fsutil.ensure_dir(str(tmp_path / "file"))


def test_open_file_creates_with_the_exact_mode(tmp_path: Path, umask: int) -> None:
    """New files get the mode; an existing file of ours is set to it again."""
    path = tmp_path / "x.lock"
    os.close(fsutil.open_file(str(path), fsutil.PRIVATE))
    assert mode(path) == 0o600
    path.chmod(0o666)
    os.close(fsutil.open_file(str(path), fsutil.PRIVATE))
    assert mode(path) == 0o600
    log = tmp_path / "x.log"
    os.close(fsutil.open_file(str(log), fsutil.LOG, os.O_WRONLY | os.O_APPEND))
    assert mode(log) == 0o640
    with pytest.raises(FileExistsError):
        fsutil.open_file(str(log), fsutil.LOG, os.O_WRONLY, exclusive=True)


def test_open_file_never_follows_a_symlink(tmp_path: Path, umask: int) -> None:
    """A planted symlink is an UnsafePathError naming it; its target is not created
    or changed."""
    target = tmp_path / "victim"
    link = tmp_path / "planted.log"
    link.symlink_to(target)
    with pytest.raises(UnsafePathError, match=f"{link} is a symbolic link"):
        fsutil.open_file(str(link), fsutil.LOG, os.O_WRONLY | os.O_APPEND)
    assert not target.exists()
    target.write_text("keep")
    target.chmod(0o644)
    with pytest.raises(UnsafePathError):
        fsutil.open_file(str(link), fsutil.PRIVATE, exclusive=True)
    assert target.read_text() == "keep" and mode(target) == 0o644


def test_open_file_refuses_a_fifo_without_blocking(tmp_path: Path, umask: int) -> None:
    """A FIFO planted where a file is expected is refused (and does not hang)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnsafePathError, match="not a regular file"):
        fsutil.open_file(str(fifo), fsutil.PRIVATE, os.O_WRONLY)


def test_write_atomic_replaces_a_symlink_instead_of_writing_through_it(
        tmp_path: Path, umask: int) -> None:
    """The new content lands in a regular file with the exact mode; what a planted
    symlink pointed at is untouched; no temporary file is left."""
    victim = tmp_path / "victim"
    victim.write_text("keep")
    path = tmp_path / "record.json"
    path.symlink_to(victim)
    fsutil.write_atomic(str(path), "new", fsutil.PRIVATE)
    assert not path.is_symlink() and path.read_text() == "new"
    assert mode(path) == 0o600
    assert victim.read_text() == "keep"
    fsutil.write_atomic(str(path), b"bytes", fsutil.FILE, fsync=True)
    assert path.read_bytes() == b"bytes" and mode(path) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json", "victim"]
