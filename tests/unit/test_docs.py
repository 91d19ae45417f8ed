"""docs/backends.md and README.md: their backend tables are generated from the code.

The blocks between the markers are what ``scripts/gen_docs.py`` writes from
the backend registry (each backend's ``Capabilities`` and declared
settings); a backend added or changed without regenerating fails here with
the command to run. Every registered backend must also have its own prose
section.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from procmgmt.backends import backend_names, get_backend
from tests.conftest import REPO

DOC = REPO / "docs" / "backends.md"


def gen_docs() -> ModuleType:
    """scripts/gen_docs.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_capability_table_is_current() -> None:
    """The committed table equals what the code generates now."""
    gen = gen_docs()
    committed = DOC.read_text(encoding="utf-8")
    expected = gen.regenerate(committed)
    if committed != expected:
        pytest.fail("docs/backends.md's capability table is out of date; regenerate it with\n"
                    f"    {gen.COMMAND}\nand review the diff:\n{gen.diff(committed, expected)}")


def test_readme_backend_table_is_current() -> None:
    """README's backend table equals what the registry generates now."""
    gen = gen_docs()
    committed = gen.README.read_text(encoding="utf-8")
    expected = gen.regenerate_readme(committed)
    if committed != expected:
        pytest.fail("README.md's backend table is out of date; regenerate it with\n"
                    f"    {gen.COMMAND}\nand review the diff:\n"
                    f"{gen.diff(committed, expected, 'README.md')}")
    block = committed[committed.index("<!-- backends:begin -->"):
                      committed.index("<!-- backends:end -->")]
    rows = [line for line in block.splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == backend_names()


def test_a_stale_readme_is_detected() -> None:
    """A hand edit of README's generated table is noticed."""
    gen = gen_docs()
    committed = gen.README.read_text(encoding="utf-8")
    tampered = committed.replace("| sysvinit | daemon |", "| sysvinit | foreground |", 1)
    assert tampered != committed
    assert gen.regenerate_readme(tampered) == committed
    with pytest.raises(ValueError, match="markers"):
        gen.regenerate_readme("# no markers here\n")


def test_table_lists_every_registered_backend_with_its_capabilities() -> None:
    """One table row per registered backend, carrying its ordering text from the code."""
    text = DOC.read_text(encoding="utf-8")
    block = text[text.index("<!-- capabilities:begin -->"):text.index("<!-- capabilities:end -->")]
    rows = [line for line in block.splitlines() if line.startswith("| ")][1:]
    assert [r.split("|")[1].strip() for r in rows] == backend_names()
    for name, row in zip(backend_names(), rows, strict=True):
        caps = get_backend(name).capabilities
        assert caps.ordering.value in row and caps.ordering_detail in row


def test_every_backend_has_a_section() -> None:
    """Prose per backend: generated, ordering, readiness, user switching, what is tested."""
    text = DOC.read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (\S+)$", text, re.MULTILINE))
    missing = [name for name in backend_names() if name not in headings]
    assert not missing, f"docs/backends.md has no '## <backend>' section for {missing}"


def test_a_stale_table_is_detected_and_markers_are_required() -> None:
    """Editing the generated block is noticed; a doc without markers is an error."""
    gen = gen_docs()
    committed = DOC.read_text(encoding="utf-8")
    tampered = committed.replace("| run for real |", "| generated and validated |", 1)
    assert tampered != committed
    assert gen.regenerate(tampered) != tampered
    assert gen.regenerate(gen.regenerate(committed)) == gen.regenerate(committed)
    with pytest.raises(ValueError, match="markers"):
        gen.regenerate("# no markers here\n")


def test_check_mode_exit_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """--check exits 0 on the current doc and 1, naming the command, on a stale copy."""
    gen = gen_docs()
    assert gen.main(["--check"]) == 0
    stale = tmp_path / "backends.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("| daemon |", "| foreground |", 1))
    monkeypatch.setattr(gen, "DOC", stale)
    assert gen.main(["--check"]) == 1
    assert gen.COMMAND in capsys.readouterr().err
    assert gen.main([]) == 0
    assert stale.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
