"""The lane rule itself (tests/_lanes.py): skip reasons, the closing summary, the lint cache."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import tasks

from tests import _lanes


def test_a_missing_tool_is_skipped_with_its_install_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_lanes.TOOLS, "pm-no-such-tool", _lanes.Tool("pm-pkg"))
    reason = _lanes.missing_reason("pm-no-such-tool")
    assert reason == ("needs pm-no-such-tool: apt-get install pm-pkg, "
                      "or run as root: python3 tasks.py test")
    with pytest.raises(pytest.skip.Exception, match="apt-get install pm-pkg"):
        _lanes.require_tool("pm-no-such-tool")
    assert _lanes.missing_reason("sh") is None


def test_an_unknown_tool_is_an_error_not_a_silent_skip() -> None:
    with pytest.raises(KeyError, match="TOOLS"):
        _lanes.missing_reason("pm-not-in-the-table")


def test_root_reason_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert _lanes.root_reason("creates users") == \
        "needs root (creates users): run as root: python3 tasks.py test"
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert _lanes.root_reason("creates users") is None


def test_summary_counts_by_reason_with_the_enabling_commands() -> None:
    reasons = ["needs root (x): run as root: python3 tasks.py test"] * 3
    reasons += ["needs apache2: apt-get install apache2, or run as root: python3 tasks.py test"] * 2
    reasons += ["needs s6-svscan: apt-get install s6, or run as root: python3 tasks.py test"]
    reasons += ["root reads any file"]
    assert _lanes.summarize(reasons) == (
        "skipped 7: 3 need root (run as root: python3 tasks.py test); "
        "2 need apache2, 1 need s6-svscan (apt-get install apache2 s6, "
        "or run as root: python3 tasks.py test); 1 other (their reasons: pytest -rs)")
    assert _lanes.summarize([]) is None


def test_every_tool_package_is_installed_by_tasks_py() -> None:
    """tasks.py test installs exactly the table's Debian packages (one list)."""
    packages = tasks.debian_packages()
    for tool in _lanes.TOOLS.values():
        assert tool.package.startswith("pip:") or tool.package in packages


def test_lint_rejects_a_bad_script_and_lints_each_content_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[list[str]] = []
    real_run = subprocess.run

    def counting_run(argv: list[str], **kw: Any) -> Any:
        runs.append(argv)
        return real_run(argv, **kw)

    monkeypatch.setattr(_lanes.subprocess, "run", counting_run)
    good = "#!/bin/sh\n# pm lint cache test\nprintf '%s\\n' \"$1\"\n"
    bad = "#!/bin/sh\n# pm lint cache test\necho $1\n"  # SC2086: unquoted
    _lanes.assert_lints_clean([good, good], _lanes.SHELLCHECK)
    _lanes.assert_lints_clean(good, _lanes.SHELLCHECK, _lanes.DASH_N)
    assert len(runs) == 2, runs  # shellcheck once, dash once: the rest came from the cache
    with pytest.raises(AssertionError, match="SC2086"):
        _lanes.assert_lints_clean([good, bad], _lanes.SHELLCHECK)
    with pytest.raises(AssertionError, match="SC2086"):
        _lanes.assert_lints_clean(bad, _lanes.SHELLCHECK)  # a cached failure still fails
    assert len(runs) == 3
