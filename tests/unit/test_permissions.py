"""Generated files and state directories have tight permissions.

The store is read-only and nothing procmgmt writes is world-writable; the
generation manifest (which lists credentials, passwords included) is not
world-readable, and no world-readable file anywhere in the state dir holds a
declared password. Everything is checked with the process umask set to 0, so
that a mode that only comes out right thanks to the caller's umask fails.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.backends import backend_names
from procmgmt.deploy.build import build, evaluate
from procmgmt.deploy.state import init_state
from procmgmt.manifest import MANIFEST
from procmgmt.settings import Settings, resolve
from procmgmt.testing import deployed

PASSWORD = "$6$s3cr3t-hash-Zq9xK"

MODEL = f'''
from procmgmt import Credentials, Group, Instance, Process, User


def processes(settings):
    creds = Credentials(groups={{"pmweb": Group()}},
                        users={{"pmweb": User(group="pmweb", password={PASSWORD!r})}})
    return {{
        "web": Instance(Process(name="web", foreground_process="/bin/sleep", daemon=None,
                                args=["300"], user="pmweb", credentials=creds,
                                initialize="mkdir -p /tmp/pm-perm-never-used || true")),
        "db": Instance(Process(name="db", foreground_process="/bin/sleep", daemon=None,
                               args=["300"])),
    }}
'''

#: A model that can run unprivileged: no user, no credentials.
RUNNABLE_MODEL = '''
from procmgmt import Process


def processes(settings):
    return {"a": Process(name="a", foreground_process="/bin/sleep", daemon=None, args=["300"]),
            "b": Process(name="b", daemon=None, foreground_process="/bin/sleep",
                         args=["301"], environment={"K": "v"})}
'''


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    """Run with another process umask."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def settings_for(state: Path, backend: str, privileged: bool) -> Settings:
    """Settings with every directory below ``state``."""
    return resolve({"state_dir": str(state), "process_manager": backend,
                    "force_disable_user_change": not privileged}, {})


def walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every entry below ``root`` (root included) with its lstat."""
    yield root, root.lstat()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            yield p, p.lstat()


def world_writable(root: Path, allow_sticky: tuple[Path, ...] = ()) -> list[str]:
    """Entries below ``root`` that anyone may write (symlinks excluded; a listed
    sticky directory is allowed)."""
    bad = []
    for p, st in walk(root):
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & stat.S_IWOTH:
            continue
        if p in allow_sticky and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
            continue
        bad.append(f"{p} {stat.filemode(st.st_mode)}")
    return bad


def build_password_model(tmp_path: Path, backend: str) -> tuple[Settings, str]:
    """Build the model declaring a password; (settings, generation path)."""
    model = tmp_path / "processes.py"
    model.write_text(MODEL)
    settings = settings_for(tmp_path / "state", backend, privileged=True)
    with umask(0):
        init_state(settings)
        m, specs = evaluate(str(model), settings)
        gen = build(m, specs, settings)
    return settings, gen.path


@pytest.mark.parametrize("backend", backend_names())
def test_store_entries_are_read_only(backend: str, tmp_path: Path) -> None:
    """Every file and directory of every store entry is read-only (no write bit
    at all), also when procmgmt runs with umask 0."""
    settings, _ = build_password_model(tmp_path, backend)
    entries = list(Path(settings.store_dir).iterdir())
    assert entries
    for entry in entries:
        for p, st in walk(entry):
            if stat.S_ISLNK(st.st_mode):
                continue
            assert not st.st_mode & 0o222, f"{p} is writable: {stat.filemode(st.st_mode)}"


@pytest.mark.parametrize("backend", backend_names())
def test_manifest_is_not_world_readable(backend: str, tmp_path: Path) -> None:
    """The generation manifest lists credentials: owner-read-only (0400)."""
    _, gen = build_password_model(tmp_path, backend)
    mode = stat.S_IMODE(os.stat(os.path.join(gen, MANIFEST)).st_mode)
    assert mode == 0o400, oct(mode)


@pytest.mark.parametrize("backend", backend_names())
def test_password_is_never_in_a_world_readable_file(backend: str, tmp_path: Path) -> None:
    """No file that others can read (in the store, the profiles or anywhere in the
    state dir) contains the declared password; the manifest does (it is what the
    account step reads), so the check is not vacuous."""
    settings, gen = build_password_model(tmp_path, backend)
    found_in = []
    for p, st in walk(Path(settings.state_dir)):
        if stat.S_ISREG(st.st_mode) and PASSWORD.encode() in p.read_bytes():
            found_in.append(p)
            assert not st.st_mode & 0o004, f"{p} is world-readable and holds the password"
    assert Path(gen) / MANIFEST in found_in


@pytest.mark.parametrize("backend", backend_names())
def test_nothing_generated_is_world_writable(backend: str, tmp_path: Path) -> None:
    """No generated file or directory in the state dir (store, profiles) is
    world-writable, with umask 0."""
    settings, _ = build_password_model(tmp_path, backend)
    assert world_writable(Path(settings.procmgmt_dir)) == []


@pytest.mark.parametrize("privileged", [
    False,
    # Only root gets a privileged deployment (resolve() disables user changes otherwise).
    pytest.param(True, marks=pytest.mark.root("a privileged deployment")),
])
def test_init_state_dirs(privileged: bool, tmp_path: Path) -> None:
    """init-state creates no world-writable directory, except the shared tmp dir of a
    privileged deployment, which is sticky (1777) like /tmp."""
    settings = settings_for(tmp_path / "state", "sysvinit", privileged)
    with umask(0):
        created = init_state(settings)
    assert created
    tmp = Path(settings.tmp_dir)
    assert world_writable(Path(settings.state_dir), allow_sticky=(tmp,)) == []
    tmp_mode = stat.S_IMODE(tmp.stat().st_mode)
    assert tmp_mode == (0o1777 if privileged else 0o755), oct(tmp_mode)


@pytest.mark.parametrize("backend", ["sysvinit", "supervisord"])
def test_deployed_state_is_not_world_writable(backend: str, tmp_path: Path) -> None:
    """After a real deployment with umask 0, nothing in the state dir is
    world-writable: not what procmgmt installed or recorded (store, profiles and
    switch records, supervisord's config, conf.d and bin links, its log), not the
    state dirs, and not the pid files and logs the processes and their manager
    create (they start with umask 022, as under init; a model may set ``umask=``)."""
    model = tmp_path / "processes.py"
    model.write_text(RUNNABLE_MODEL)
    state = tmp_path / "state"
    with umask(0), deployed(model, backend=backend, state_dir=state) as d:
        assert all(running for running, _ in d.status().values())
        assert world_writable(Path(d.settings.procmgmt_dir)) == []
        assert world_writable(Path(d.settings.state_dir)) == []
        dirs = [Path(p) for p in d.settings.dirs().values() if Path(p).is_dir()]
        loose = [f"{p} {stat.filemode(p.stat().st_mode)}" for p in dirs
                 if p.stat().st_mode & stat.S_IWOTH and not p.stat().st_mode & stat.S_ISVTX]
        assert loose == []
