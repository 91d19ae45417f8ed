"""Reading and following log files: last lines, replacement, truncation, prefixes."""

from __future__ import annotations

import io
import os
from pathlib import Path

from procmgmt.deploy.logs import FileFollower, Printer, journal_command, last_lines


def test_last_lines(tmp_path: Path) -> None:
    """The last N lines, a final line without newline included; a missing file is empty."""
    log = tmp_path / "a.log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(100000)) + b"tail")
    lines, end = last_lines(str(log), 3)
    assert lines == ["line 99998", "line 99999", "tail"] and end == log.stat().st_size
    assert last_lines(str(log), 0) == ([], end)
    assert last_lines(str(tmp_path / "missing.log"), 5) == ([], 0)


def test_follower_appends_replacement_truncation(tmp_path: Path) -> None:
    """New complete lines only; a replaced file is read from its start after the rest
    of the old one; a truncated one from its start; a missing one is waited for."""
    log = tmp_path / "a.log"
    f = FileFollower("a", str(log))
    f.start(0)
    assert f.poll() == []  # not there yet
    log.write_text("one\ntw")
    assert f.poll() == ["one"]
    with log.open("a") as w:
        w.write("o\n")
    assert f.poll() == ["two"]
    new = tmp_path / "a.log.new"
    new.write_text("fresh 1\n")
    with log.open("a") as w:
        w.write("last of old\n")
    os.replace(new, log)
    assert f.poll() == ["last of old", "fresh 1"]
    log.write_text("x\n")  # truncated (same inode) and rewritten shorter
    assert f.poll() == ["x"]
    f.close()


def test_printer_prefix_and_colour() -> None:
    """Names padded to the longest; colour codes only when asked for."""
    out = io.StringIO()
    Printer(out, ["a", "long"], colour=False).lines("a", ["hi"])
    assert out.getvalue() == "a    | hi\n"
    out = io.StringIO()
    Printer(out, ["a", "long"], colour=True).lines("long", ["hi"])
    assert out.getvalue() == "\033[33mlong |\033[0m hi\n"


def test_journal_command() -> None:
    """systemd: journalctl selecting the unit, messages only, N lines, --follow."""
    assert journal_command(("-u", "web.service"), 5, True) == [
        "journalctl", "-u", "web.service", "--output=cat", "--no-pager", "--lines=5",
        "--follow"]


def test_log_sources_per_backend(tmp_path: Path) -> None:
    """sysvinit: the manifest's log file; systemd: the unit's journal."""
    from procmgmt.backends.systemd import SystemdActivator
    from procmgmt.backends.sysvinit import SysVInitActivator
    from procmgmt.manifest import DeployedProcess, Generation
    from procmgmt.settings import resolve

    settings = resolve({"state_dir": str(tmp_path)})
    proc = DeployedProcess("web", "h", "/x", 0, extra={"log_file": "/l/web.log",
                                                       "unit": "web.service"})
    gen = Generation("sysvinit", "/x", (proc,))
    assert SysVInitActivator(settings).log_source(gen, proc).files == ("/l/web.log",)
    act = SystemdActivator(settings)
    source = act.log_source(gen, proc)
    assert source.files == ()
    assert source.journal == ("--user-unit" if act.user else "-u", "web.service")


def test_journal_command_since_and_all_lines() -> None:
    """--since goes to journalctl as an epoch time; no count means every line."""
    assert journal_command(("-u", "web.service"), None, False, since=1800000000.7) == [
        "journalctl", "-u", "web.service", "--output=cat", "--no-pager", "--lines=all",
        "--since=@1800000000"]
