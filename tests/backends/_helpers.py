"""Helpers the backend tests share: private settings, switching like the CLI
does, and looking at real processes and servers the tests started."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from procmgmt.deploy.switch import Switcher
from procmgmt.manifest import Generation
from procmgmt.settings import Settings


def tmp_settings(root: Path, privileged: bool = False, *, manager: str,
                 **extra: Any) -> Settings:
    """Settings for process manager ``manager`` with every directory below
    ``root`` (a test's private tree); ``extra`` become the extra params."""
    state = str(root / "state")
    return Settings(
        state_dir=state, runtime_dir=f"{state}/run", log_dir=f"{state}/log",
        tmp_dir=f"{state}/tmp", cache_dir=f"{state}/cache", spool_dir=f"{state}/spool",
        lock_dir=f"{state}/lock", lib_dir=f"{state}/lib",
        force_disable_user_change=not privileged, process_manager=manager,
        profile="processes", extra_params=extra, calling_user="deployer",
        calling_group="deployer",
    )


def deploy(switcher: Switcher, model_file: Path | None) -> Generation:
    """Build ``model_file`` (None: undeploy) and switch to it, like 'procmgmt switch
    --replace': the upgrade tests move between model files of one profile."""
    return switcher.deploy(None if model_file is None else str(model_file),
                           replace=True).generation


def rollback(switcher: Switcher) -> Generation:
    """Switch to the previous generation, like 'procmgmt switch --rollback'."""
    return switcher.rollback().generation


def get_body(port: int, timeout: float = 10.0) -> str:
    """GET http://127.0.0.1:port/, retrying until ``timeout`` (a server that is
    still starting); the last error when it never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes whose session id is ``sid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # fields: state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found
