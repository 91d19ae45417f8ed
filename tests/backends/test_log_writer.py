"""The rotating log writer of the init scripts (backends/sh/log_writer.sh), run as the
shells the scripts run under."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from procmgmt.backends.sysvinit.script import LOG_WRITER_SH

SHELLS = [s for s in ("dash", "bash", "busybox") if shutil.which(s)]


def _write(shell: str, log: Path, text: bytes, max_bytes: int, backups: int) -> None:
    script = (f"{LOG_WRITER_SH}\nprocmgmt_name=t procmgmt_logfile='{log}' "
              f"procmgmt_log_max_bytes={max_bytes} procmgmt_log_backups={backups}\n"
              "procmgmt_log_writer\n")
    argv = [shell, "sh", "-c", script] if shell == "busybox" else [shell, "-c", script]
    subprocess.run(argv, input=text, check=True, timeout=30)


@pytest.mark.parametrize("shell", SHELLS)
def test_rotates_by_size_keeps_n_and_loses_no_line(shell: str, tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    log.write_bytes(b"old 1\n")  # what an earlier run wrote counts towards the size
    lines = [b"line %02d" % i for i in range(40)]  # 8 bytes + newline each
    _write(shell, log, b"\n".join(lines) + b"\nno newline", max_bytes=90, backups=2)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["p.log", "p.log.1", "p.log.2"]
    for f in kept:
        assert (tmp_path / f).stat().st_size <= 90 + 9
    text = b"".join((tmp_path / f).read_bytes() for f in ("p.log.2", "p.log.1", "p.log"))
    got = text.splitlines()
    assert got[-1] == b"no newline" and text.endswith(b"\n")
    assert got[:-1] == lines[len(lines) - len(got) + 1:], "lines lost or out of order"


@pytest.mark.parametrize("shell", SHELLS[:1])
def test_no_backups_starts_the_file_again(shell: str, tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    _write(shell, log, b"".join(b"line %02d\n" % i for i in range(30)), 45, 0)
    assert [p.name for p in tmp_path.iterdir()] == ["p.log"]
    assert log.read_bytes().endswith(b"line 29\n") and log.stat().st_size <= 45 + 8
