"""Running generated bsdrc scripts for real against the stand-in rc.subr and daemon(8).

:class:`Scripts` renders a model with the bsdrc backend into a test's private
tree, points every script at ``fake_rc_subr.sh`` and its daemon(8) stand-in
(through ``<name>_program`` in the stand-in rc.conf) and runs
``<script> one...`` as the activator would.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

from procmgmt.backends._activation import pid_alive, read_pid_file
from procmgmt.settings import Settings
from tests.backends.test_bsdrc import (
    FAKE_RC_SUBR,
    rendered,
    script_of,
    tmp_settings,
    with_fake_rc_subr,
    write,
)


class Scripts:
    """The model's scripts written below ``root``, run with the stand-in rc.subr."""

    def __init__(self, root: Path, model: str, **settings: Any) -> None:
        """Render ``model`` with the test settings changed by ``settings``."""
        self.root = root
        self.settings: Settings = dataclasses.replace(tmp_settings(root), **settings)
        model_file = root / "processes.py"
        model_file.write_text(model)
        _, _, files = rendered(model_file, self.settings, patch=with_fake_rc_subr)
        self.scripts: dict[str, Path] = {}
        for name, fs in files.items():
            write(fs, root / "store" / name)
            self.scripts[name] = root / "store" / name / script_of(fs).path
        bin_dir = root / "bin"
        bin_dir.mkdir()
        daemon = bin_dir / "daemon"
        # The supervisor runs as "daemon:", the title FreeBSD's daemon(8) gives itself.
        daemon.write_text("#!/bin/bash\nexec -a daemon: /bin/sh -c "
                          "'. \"$0\"; fake_daemon \"$@\"' "
                          f"{shlex.quote(str(FAKE_RC_SUBR))} \"$@\"\n")
        daemon.chmod(0o755)
        self.rc_conf = root / "rc.conf"
        self.rc_conf.write_text("".join(f"{n}_program={daemon}\n" for n in self.scripts))
        self.env = {**os.environ, "PROCMGMT_FAKE_RC_CONF": str(self.rc_conf),
                    "PROCMGMT_READY_WAIT": "0"}
        self.started: list[int] = []
        # The engine creates these before it runs a script.
        for d in (self.settings.runtime_dir, self.settings.log_dir):
            Path(str(d)).mkdir(parents=True, exist_ok=True)

    def store(self, name: str) -> Path:
        """The store entry of ``name``."""
        return self.root / "store" / name

    def pid_file(self, name: str) -> Path:
        """Where the script's pidfile= points."""
        return Path(self.settings.runtime_dir) / f"{name}.pid"

    def run(self, name: str, action: str, umask: int | None = None
            ) -> subprocess.CompletedProcess[str]:
        """``<script> <action>``, output and status."""
        prefix = [] if umask is None else ["sh", "-c", f'umask {umask:03o} && exec "$@"', "sh"]
        return subprocess.run([*prefix, str(self.scripts[name]), action], env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)

    def start(self, name: str, umask: int | None = None) -> int:
        """Start ``name`` and return the pid its pid file names once it runs, as
        rc.subr sees it (``onestatus``: the pid runs its program, not still the
        ``su``/daemon(8) on the way to it, which rc.subr's stop would not find)."""
        result = self.run(name, "onestart", umask)
        assert result.returncode == 0, result.stdout + result.stderr
        deadline = time.monotonic() + 10
        while True:
            pid = read_pid_file(str(self.pid_file(name)))
            if pid is not None and pid_alive(pid):
                if pid not in self.started:
                    self.started.append(pid)
                if self.run(name, "onestatus").returncode == 0:
                    return pid
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.02)

    def child_or_none(self, name: str) -> int | None:
        """The live child a supervising daemon(8) names in its -p file, or None."""
        pid = read_pid_file(str(Path(self.settings.runtime_dir) / f"{name}.child.pid"))
        if pid is None or not pid_alive(pid):
            return None
        if pid not in self.started:
            self.started.append(pid)
        return pid

    def child(self, name: str) -> int:
        """The pid of the child a supervising daemon(8) started (waiting for it)."""
        deadline = time.monotonic() + 10
        while (pid := self.child_or_none(name)) is None:
            assert time.monotonic() < deadline, f"{name}: no child pid"
            time.sleep(0.02)
        return pid

    def stop(self, name: str) -> tuple[subprocess.CompletedProcess[str], float]:
        """``onestop`` and the seconds it took."""
        began = time.monotonic()
        result = self.run(name, "onestop")
        return result, time.monotonic() - began

    def kill_all(self) -> None:
        """Stop by pid whatever a test started."""
        for pid in self.started:
            if pid_alive(pid):
                os.kill(pid, 9)
