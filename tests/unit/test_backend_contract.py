"""The backend contract: a new backend is one package plus golden cases.

tests/fixtures/example_backend is a third-party backend (a Procfile writer)
with its own ``pyproject.toml``. Registered here exactly as its entry point
declares it, it shows up in the registry, the capability and settings
tables, ``--help``, the generated docs and model validation, renders its
golden cases and reports located problems, all without an edit to procmgmt.
The built-in backends keep the same contract.
"""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from procmgmt.backends import backend_names, get_backend, registry
from procmgmt.backends.base import (
    Capabilities,
    Coverage,
    Ordering,
    PidFiles,
    Privilege,
    ProcessMode,
    Support,
)
from procmgmt.backends.table import capability_table, settings_table
from procmgmt.cli.main import main
from procmgmt.deploy.build import evaluate, render
from procmgmt.errors import UsageError, ValidationError
from procmgmt.settings import resolve
from tests.conftest import REPO, golden_settings
from tests.golden.test_golden import CASES, GOLDEN, _read_tree, _write_tree, rendered_tree
from tests.unit.test_docs import gen_docs

EXAMPLE = REPO / "tests" / "fixtures" / "example_backend"
EXAMPLE_GOLDEN = EXAMPLE / "golden"
#: The cases a Procfile can express (the daemon-only one is refused, see below).
EXAMPLE_CASES = ["webapps-unprivileged", "webapps-advanced-privileged", "webapps-foreground"]


def install_entry_points(site: Path, project: Path) -> None:
    """A dist-info in ``site`` declaring ``project``'s entry points, as pip would
    write it on installing the project (the project's own pyproject is the source)."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\n"
                                   f"Version: {meta['version']}\n")
    lines = []
    for group, points in meta["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {value}" for name, value in points.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def _forget(prefix: str) -> None:
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.fixture
def procfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The example backend installed (importable, entry point visible); its name."""
    install_entry_points(tmp_path / "site", EXAMPLE)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    importlib.invalidate_caches()
    registry.cache_clear()
    yield "procfile"
    registry.cache_clear()
    _forget("procmgmt_procfile")


def test_found_through_its_entry_point(procfile: str) -> None:
    """Registered by its distribution alone: no list in procmgmt names it."""
    assert procfile in backend_names()
    backend = get_backend(procfile)
    assert type(backend).__module__ == "procmgmt_procfile.backend"
    mentions = [p for p in (REPO / "src" / "procmgmt").rglob("*.py")
                if procfile in p.read_text(encoding="utf-8")]
    assert mentions == []


def test_appears_in_tables_help_docs_and_validation(
        procfile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every place that lists backends derives it from the registry."""
    assert any(row.startswith("procfile ") for row in capability_table(backend_names())
               .splitlines())
    assert "PROCMGMT_PROCFILE_ENV" in settings_table(backend_names())
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    out = capsys.readouterr().out
    assert "procfile backend settings" in out and "PROCMGMT_PROCFILE_ENV" in out
    assert "one of bsdrc" in out and "procfile" in out
    gen = gen_docs()
    committed = gen.README.read_text(encoding="utf-8")
    assert "| procfile |" in gen.regenerate_readme(committed)  # a stale README is noticed
    assert "| procfile |" in gen.regenerate(gen.DOC.read_text(encoding="utf-8"))
    model = tmp_path / "m.py"
    model.write_text("from procmgmt import Instance, Process\n"
                     "def processes(settings):\n"
                     "    return {'a': Instance(Process(name='a', foreground_process='/bin/true',\n"
                     "        overrides={'procfile': {'directory': '/srv'}}))}\n")
    settings = golden_settings(False, procfile)
    m, specs = evaluate(str(model), settings)
    (result,) = render(m, specs, settings).processes
    assert result.files[0].content == ("a: cd /srv && env PROCMGMT_DEPLOYMENT=/srv/pm:processes "
                                       "PROCMGMT_PROCESS=a exec /bin/true\n")
    model.write_text(model.read_text().replace("'procfile'", "'procfilee'"))
    with pytest.raises(ValidationError, match=r"unknown backend 'procfilee'; known: .*procfile"):
        evaluate(str(model), settings)


@pytest.mark.golden
@pytest.mark.parametrize("case", EXAMPLE_CASES)
def test_golden_cases(procfile: str, case: str, update_golden: bool) -> None:
    """The example's golden cases, through the same runner as the built-in ones."""
    tree = rendered_tree(procfile, case)
    root = EXAMPLE_GOLDEN / case
    if update_golden:
        _write_tree(root, tree)
        return
    assert tree == _read_tree(root)


def test_problems_are_located_like_model_problems(procfile: str, tmp_path: Path) -> None:
    """Backend.validate's problems carry the model file, line, instance and field."""
    model = tmp_path / "m.py"
    model.write_text("from procmgmt import Instance, Process\n"
                     "def processes(settings):\n"
                     "    return {'d': Instance(Process(\n"
                     "        name='d', daemon='/bin/d', foreground_process=None))}\n")
    settings = golden_settings(False, procfile)
    m, specs = evaluate(str(model), settings)
    with pytest.raises(ValidationError) as info:
        render(m, specs, settings)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.instance, problem.field) == (
        str(model), 3, "d", "foreground_process")
    assert problem.message.startswith("procfile: ")


def test_own_setting_is_read_through_its_declaration(procfile: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """PROCMGMT_PROCFILE_ENV=0 drops the environment; a bad value is refused by
    resolve before anything is built, naming the variable."""
    monkeypatch.setenv("PROCMGMT_PROCFILE_ENV", "0")
    tree = rendered_tree(procfile, "webapps-unprivileged")
    assert all(" env " not in text for text in tree.values())
    monkeypatch.setenv("PROCMGMT_PROCFILE_ENV", "maybe")
    with pytest.raises(UsageError, match="PROCMGMT_PROCFILE_ENV"):
        resolve({"state_dir": "/srv/pm"})


def test_broken_entry_points_name_themselves(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry point that cannot be imported, or whose backend has another name,
    is one clear error naming the entry point."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "broken"\nversion = "1"\n'
        '[project.entry-points."procmgmt.backends"]\nbroken = "no_such_module_here"\n')
    install_entry_points(tmp_path / "site", project)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    registry.cache_clear()
    try:
        with pytest.raises(UsageError, match="entry point broken = no_such_module_here"):
            registry()
    finally:
        registry.cache_clear()


ENUMS: dict[str, type] = {"dependencies": Support, "ordering": Ordering,
                          "user_switching": Support, "tested": Coverage,
                          "readiness": Support, "pid_files": PidFiles}


@pytest.mark.parametrize("name", backend_names())
def test_builtin_backends_keep_the_contract(name: str) -> None:
    """Each built-in backend: a module or package of its own name defining BACKEND,
    typed capabilities, its settings named after it, golden files for every case.
    A module name cannot hold a dash: ``s6-rc`` lives in ``s6rc``."""
    cls = registry()[name]
    module = importlib.import_module(f"procmgmt.backends.{name.replace('-', '')}")
    assert module.BACKEND is cls and cls.name == name
    caps = cls.capabilities
    assert isinstance(caps, Capabilities)
    assert caps.prefers is None or isinstance(caps.prefers, ProcessMode)
    for field, enum in ENUMS.items():
        assert isinstance(getattr(caps, field), enum), field
    assert all(isinstance(p, Privilege) for p in caps.privileges)
    assert caps.deploys == bool(caps.privileges)
    for setting in cls.own_settings:
        assert setting.env.startswith(f"PROCMGMT_{name.upper().replace('-', '')}"), setting.env
        assert setting.flag is None
    assert {p.name for p in (GOLDEN / name).iterdir()} == set(CASES)


def test_settings_have_one_owner() -> None:
    """No variable is declared twice (by two backends, or a backend and the shared table)."""
    from procmgmt.settings import FIELDS

    envs = [f.env for f in FIELDS] + [f.env for cls in registry().values()
                                      for f in cls.own_settings]
    assert len(envs) == len(set(envs))
