"""Golden files: every generator's output for the example models, reviewed in git.

One runner for all backends. ``pytest tests/golden --update-golden``
rewrites the expected trees; review the diff before committing. Machine
specific paths (this checkout, the Python interpreter) are replaced by
``@REPO@`` and ``@PYTHON@`` so the files are the same on every machine.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from procmgmt.backends import backend_names, get_backend
from procmgmt.backends.base import File
from procmgmt.deploy.build import evaluate, render
from tests.conftest import EXAMPLES, REPO, golden_settings

GOLDEN = Path(__file__).resolve().parent

#: case name -> (model file, privileged, extra params)
CASES: dict[str, tuple[Path, bool, dict[str, object]]] = {
    "webapps-unprivileged": (EXAMPLES / "webapps" / "processes.py", False, {}),
    "webapps-advanced-unprivileged": (EXAMPLES / "webapps" / "processes-advanced.py", False, {}),
    "webapps-advanced-privileged": (EXAMPLES / "webapps" / "processes-advanced.py", True, {}),
    "webapps-foreground": (EXAMPLES / "webapps" / "processes.py", False,
                           {"webapp_mode": "foreground"}),
    "webapps-daemon": (EXAMPLES / "webapps" / "processes.py", False, {"webapp_mode": "daemon"}),
    "lifecycle": (REPO / "tests" / "fixtures" / "lifecycle" / "processes.py", False, {}),
    "liveness": (REPO / "tests" / "fixtures" / "liveness" / "processes.py", False, {}),
}


def normalize(text: str) -> str:
    """Replace machine-specific paths by placeholders."""
    return text.replace(sys.executable, "@PYTHON@").replace(str(REPO), "@REPO@")


def rendered_tree(backend: str, case: str) -> dict[str, str]:
    """relative path -> content (or '-> target' for symlinks) of everything generated."""
    model_path, privileged, extra = CASES[case]
    import dataclasses

    settings = dataclasses.replace(golden_settings(privileged, backend), extra_params=extra)
    model, specs = evaluate(str(model_path), settings)
    result = render(model, specs, settings, get_backend(backend))
    tree: dict[str, str] = {}

    def put(prefix: str, f: File) -> None:
        key = f"{prefix}/{f.path}"
        tree[key] = f"-> {f.symlink}" if f.symlink is not None else normalize(f.content or "")

    for r in result.processes:
        for f in r.files:
            put(r.spec.name, f)
    for f in result.generation_files:
        put("_generation", f)
    if result.warnings:
        tree["_warnings.txt"] = normalize("\n".join(result.warnings) + "\n")
    return tree


def _read_tree(root: Path) -> dict[str, str]:
    tree = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            text = p.read_text(encoding="utf-8")
            if rel.endswith(".symlink"):
                tree[rel[: -len(".symlink")]] = text.rstrip("\n")
            else:
                tree[rel] = text
    return tree


def _write_tree(root: Path, tree: dict[str, str]) -> None:
    if root.exists():
        shutil.rmtree(root)
    for rel, content in tree.items():
        is_link = content.startswith("-> ")
        p = root / (rel + ".symlink" if is_link else rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content + "\n" if is_link else content, encoding="utf-8")


PARAMS = [(b, c) for b in backend_names() for c in CASES]


@pytest.mark.golden
@pytest.mark.parametrize(("backend", "case"), PARAMS, ids=[f"{b}-{c}" for b, c in PARAMS])
def test_golden(backend: str, case: str, update_golden: bool) -> None:
    """The generated files equal the reviewed golden files."""
    tree = rendered_tree(backend, case)
    root = GOLDEN / backend / case
    if update_golden:
        _write_tree(root, tree)
        return
    if not root.exists():
        pytest.fail(f"no golden files for {backend}/{case}: run pytest --update-golden and review")
    expected = _read_tree(root)
    assert sorted(tree) == sorted(expected), "set of generated files differs"
    for rel in sorted(tree):
        assert tree[rel] == expected[rel], f"{backend}/{case}/{rel} differs from the golden file"
