"""Progress output: plain lines off a terminal, a live status line on one."""

from __future__ import annotations

import io

from procmgmt.deploy.progress import Progress


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal() -> None:
    """A pipe or log gets exactly one line per event and no escape codes."""
    out = io.StringIO()
    p = Progress(out)
    p.count("starting")
    p.line("starting web")
    p.count("starting", -1)
    p.count("ready")
    p.close()
    assert out.getvalue() == "starting web\n"


def test_live_status_line_on_a_terminal() -> None:
    """On a terminal the counts are redrawn in place and erased at the end."""
    out = FakeTTY()
    p = Progress(out)
    p.count("starting")
    p.line("starting web")
    p.count("starting", -1)
    p.count("ready")
    p.count("failed")
    text = out.getvalue()
    assert "starting web\n" in text
    assert "[1 ready, 0 starting, 1 FAILED]" in text
    assert "\x1b[K" in text
    p.close()
    assert out.getvalue().endswith("\r\x1b[K")
