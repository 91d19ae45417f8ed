"""Pid directories and log files prepared without following symlinks
(:mod:`procmgmt.service_files`), as any user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from procmgmt.errors import DeployError
from procmgmt.service_files import ensure_log_file, ensure_service_dir
from procmgmt.settings import resolve


def test_symlinked_log_in_a_shared_dir_is_an_error_naming_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    target = tmp_path / "target"
    (shared / "svc.log").symlink_to(target)
    with pytest.raises(DeployError, match=f"{shared / 'svc.log'} is a symlink"):
        ensure_log_file(str(shared / "svc.log"), None)
    assert not target.exists()


def test_log_in_a_shared_dir_is_created_exclusively_0640(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    ensure_log_file(str(shared / "svc.log"), None)
    st = os.lstat(shared / "svc.log")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    ensure_log_file(str(shared / "svc.log"), None)  # an existing regular file is fine


def test_pid_dir_is_made_in_a_private_parent_and_symlinks_are_refused(tmp_path: Path) -> None:
    settings = resolve({"state_dir": str(tmp_path / "state")}, environ={})
    os.makedirs(settings.runtime_dir)
    own = settings.pid_dir("svc")
    ensure_service_dir(settings, own, None)
    assert stat.S_IMODE(os.stat(own).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(settings.pid_parent_dir).st_mode) == 0o755
    os.rmdir(own)
    os.symlink(str(tmp_path), own)
    with pytest.raises(DeployError, match="is a symlink"):
        ensure_service_dir(settings, own, None)
    os.unlink(own)
    os.chmod(settings.pid_parent_dir, 0o777)
    with pytest.raises(DeployError, match="nobody else can write"):
        ensure_service_dir(settings, own, None)
