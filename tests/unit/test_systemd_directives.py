"""Unknown systemd directives are refused; the list of known ones is systemd's own."""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from procmgmt.backends.systemd.directives import directive_problems, known_directives

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "systemd_directives.py"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None
                    or not glob.glob("/usr/lib/*/systemd/libsystemd-core-*.so"),
                    reason="needs an installed systemd (systemd-analyze, libsystemd-core)")
def test_the_committed_list_is_what_this_systemd_knows() -> None:
    """The list is generated, not written: regenerating it from the installed systemd
    gives the committed file (rerun the script after a systemd upgrade)."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr


def test_the_list_holds_the_directives_procmgmt_writes() -> None:
    known = known_directives()
    assert set(known) == {"Unit", "Service", "Install"}
    for section, key in (("Unit", "Description"), ("Unit", "Wants"), ("Unit", "After"),
                         ("Service", "ExecStart"), ("Service", "ExecStartPre"),
                         ("Service", "PIDFile"), ("Service", "NotifyAccess"),
                         ("Service", "TimeoutStartSec"), ("Install", "WantedBy")):
        assert key in known[section], (section, key)


def test_extension_keys_and_sections_pass() -> None:
    assert directive_problems({"Service": {"X-Owner": "ops", "Restart": "always"},
                               "X-Custom": {"Anything": "1"}}) == []


def test_deleting_an_unknown_key_is_not_reported() -> None:
    """``None`` in a dict override deletes a key: nothing is written."""
    assert directive_problems({"Service": {"NoSuchKey": None}}) == []


def test_unknown_key_and_section_are_named_with_a_suggestion() -> None:
    problems = dict(directive_problems({"Unit": {"Descripton": "x"}, "Instal": {}}))
    assert "did you mean Description" in problems["Unit.Descripton"]
    assert "did you mean Install" in problems["Instal"]
