"""Every shell file the package ships is linted once, as the shell it is.

Shell code lives in ``.sh`` package data (see
:func:`procmgmt.backends._shell.shell_file`); this walks what the installed
package holds, so a file that is not shipped, or one that a linter rejects,
fails here rather than inside some generated script.
"""

from __future__ import annotations

import importlib.resources
from importlib.resources.abc import Traversable

import pytest

from procmgmt.backends._shell import SHELLCHECK_DIRECTIVE
from tests import _lanes


def _shell_files(root: Traversable, prefix: str = "") -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in root.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found.update(_shell_files(entry, f"{name}/"))
        elif entry.name.endswith(".sh"):
            found[name] = entry.read_text(encoding="utf-8")
    return found


FILES = _shell_files(importlib.resources.files("procmgmt"))


def test_the_package_ships_its_shell_files() -> None:
    assert "backends/sh/pid_owned.sh" in FILES
    assert "backends/sh/make_piddir.sh" in FILES


@pytest.mark.parametrize("name", [
    "backends/sysvinit/helpers.sh",
    "backends/sysvinit/start_head.sh",
    "backends/sysvinit/start_daemon.sh",
    "backends/sysvinit/start_foreground.sh",
    "backends/sysvinit/start_foreground_tail.sh",
    "backends/sysvinit/spawn_append.sh",
    "backends/sysvinit/spawn_rotating.sh",
    "backends/sysvinit/supervise.sh",
    "backends/s6/finish.sh",
    "backends/runit/finish.sh",
    "backends/sh/log_writer.sh",
    "backends/sh/process_wait.sh",
    "backends/bsdrc/helpers.sh",
    "backends/bsdrc/stop.sh",
    "backends/bsdrc/log_start.sh",
    "backends/bsdrc/log_serve.sh",
    *(f"backends/shared/sh/ready_{kind}.sh"
      for kind in ("common", "last", "tcp", "http", "pidfile", "log", "command")),
    *(f"backends/shared/sh/proxy_{part}.sh" for part in ("wait_for", "daemon_head", "daemon_tail")),
    "backends/shared/sh/liveness_watch.sh",
])
def test_the_backend_packages_ship_their_shell_files(name: str) -> None:
    assert name in FILES


@pytest.mark.parametrize("name", sorted(FILES))
def test_shell_file_declares_its_dialect(name: str) -> None:
    assert FILES[name].startswith(SHELLCHECK_DIRECTIVE), name


def test_shell_files_lint_clean() -> None:
    texts = list(FILES.values())
    _lanes.assert_lints_clean(texts, _lanes.SHELLCHECK, _lanes.DASH_N, _lanes.SH_N,
                              ("checkbashisms", "-f"))
