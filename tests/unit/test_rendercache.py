"""The render cache (procmgmt.deploy.rendercache) and its fingerprints
(procmgmt.deploy.fingerprint): a build renders only what changed, and a cached
build gives exactly the generation an uncached one does.

Every test builds into its own tmp state dir; nothing is started."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmgmt.backends import deployable_names
from procmgmt.deploy import build as build_mod
from procmgmt.deploy import rendercache, store
from procmgmt.deploy.build import build, evaluate
from procmgmt.deploy.fingerprint import UncacheableError, fingerprint, generator_fingerprint
from procmgmt.deploy.rendercache import RenderCache
from procmgmt.deploy.switch import build_model
from procmgmt.manifest import Generation
from procmgmt.settings import Settings, resolve

MODEL = '''
from procmgmt import Instance, Process
from procmgmt.readiness import TCP

CONFIG = {config!r}


def processes(settings):
    db = Process(name="db", foreground_process="/bin/sleep",
                 foreground_process_args=["1000"],
                 readiness=TCP(port=CONFIG["db_port"]))
    web = Process(name="web", foreground_process=CONFIG.get("web_exe", "/bin/sleep"),
                  foreground_process_args=["1000"], dependencies=[db],
                  path=CONFIG.get("web_path", []),
                  overrides=CONFIG.get("web_overrides", {{}}))
    out = {{"db": Instance(db), "web": Instance(web)}}
    for i in range(CONFIG.get("others", 3)):
        p = Process(name=f"other{{i}}", foreground_process="/bin/sleep",
                    foreground_process_args=[str(i)])
        out[p.name] = Instance(p)
    return out
'''


def write_model(path: Path, **config: Any) -> str:
    path.write_text(MODEL.format(config={"db_port": 4000, **config}))
    return str(path)


def settings_in(state: Path, backend: str = "sysvinit", **extra: Any) -> Settings:
    return resolve({"state_dir": str(state), "process_manager": backend,
                    "force_disable_user_change": True, "extra_params": json.dumps(extra)}, {})


@pytest.fixture
def caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RenderCache]]:
    """Every RenderCache a build opens, to read its hit and miss counts."""
    opened: list[RenderCache] = []
    real = RenderCache.open

    def spy(settings: Settings, backend: Any) -> RenderCache:
        cache = real(settings, backend)
        opened.append(cache)
        return cache

    monkeypatch.setattr(build_mod.RenderCache, "open", staticmethod(spy))
    yield opened


def built(settings: Settings, model: str) -> Generation:
    return build_model(settings, model).generation


def counts(caches: list[RenderCache]) -> tuple[int, int]:
    """(hits, misses) of the last build."""
    return caches[-1].hits, caches[-1].misses


def uncached(settings: Settings, model: str) -> Generation:
    m, specs = evaluate(model, settings)
    return build(m, specs, settings, use_cache=False)


@pytest.mark.parametrize("backend", [b for b in deployable_names() if b != "docker"])
def test_a_second_build_renders_nothing_and_gives_the_same_generation(
        tmp_path: Path, caches: list[RenderCache], backend: str) -> None:
    settings = settings_in(tmp_path / "s", backend)
    model = write_model(tmp_path / "m.py")
    first = built(settings, model)
    assert counts(caches) == (0, 5)
    again = built(settings, model)
    assert counts(caches) == (5, 0)
    assert again.path == first.path == uncached(settings, model).path
    assert again.warnings == first.warnings


def test_one_added_instance_renders_one(tmp_path: Path, caches: list[RenderCache]) -> None:
    settings = settings_in(tmp_path / "s")
    built(settings, write_model(tmp_path / "m.py"))
    model = write_model(tmp_path / "m2.py", others=4)
    gen = built(settings, model)
    assert counts(caches) == (5, 1)
    assert gen.path == uncached(settings, model).path


@pytest.mark.parametrize(("backend", "rendered"), [
    ("supervisord", 2), ("s6", 2), ("runit", 2), ("launchd", 2), ("cygrunsrv", 2),
    # The engine waits for db's check; web's init script does not mention it.
    ("sysvinit", 1)])
def test_a_dependency_the_dependent_reads_renders_the_dependent_again(
        tmp_path: Path, caches: list[RenderCache], backend: str, rendered: int) -> None:
    """web's files carry db's readiness check (its proxy or run script waits
    for it): a new db port renders db and web again, nothing else."""
    settings = settings_in(tmp_path / "s", backend)
    built(settings, write_model(tmp_path / "m.py"))
    model = write_model(tmp_path / "m2.py", db_port=4001)
    gen = built(settings, model)
    assert counts(caches) == (5 - rendered, rendered)
    assert gen.path == uncached(settings, model).path


def test_an_override_renders_its_process_again(tmp_path: Path,
                                               caches: list[RenderCache]) -> None:
    settings = settings_in(tmp_path / "s", "supervisord")
    built(settings, write_model(tmp_path / "m.py"))
    model = write_model(tmp_path / "m2.py",
                        web_overrides={"supervisord": {"startsecs": 3}})
    gen = built(settings, model)
    assert counts(caches) == (4, 1)
    assert gen.by_name()["web"].hash != built(settings, write_model(tmp_path / "m.py")) \
        .by_name()["web"].hash
    assert gen.path == uncached(settings, model).path


def test_a_changed_setting_renders_everything_again(tmp_path: Path,
                                                    caches: list[RenderCache]) -> None:
    model = write_model(tmp_path / "m.py")
    built(settings_in(tmp_path / "s"), model)
    other = settings_in(tmp_path / "s", extra="value")
    gen = built(other, model)
    assert counts(caches) == (0, 5)
    assert gen.path == uncached(other, model).path


def test_an_environment_setting_of_a_backend_renders_everything_again(
        tmp_path: Path, caches: list[RenderCache], monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd reads its unit prefix from the environment while translating."""
    settings = settings_in(tmp_path / "s", "systemd")
    model = write_model(tmp_path / "m.py")
    first = built(settings, model)
    monkeypatch.setenv("PROCMGMT_SYSTEMD_PREFIX", "other-")
    gen = built(settings, model)
    assert counts(caches) == (0, 5)
    assert gen.path != first.path
    assert gen.path == uncached(settings, model).path


def test_procmgmt_s_own_code_is_part_of_the_key(tmp_path: Path, caches: list[RenderCache],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_in(tmp_path / "s")
    model = write_model(tmp_path / "m.py")
    built(settings, model)
    monkeypatch.setattr(rendercache, "generator_fingerprint", lambda *roots: "another version")
    built(settings, model)
    assert counts(caches) == (0, 5)


def test_the_code_fingerprint_changes_with_any_file(tmp_path: Path) -> None:
    code = tmp_path / "pkg"
    (code / "sub").mkdir(parents=True)
    (code / "sub" / "a.py").write_text("x = 1\n")
    (code / "b.sh").write_text("echo\n")
    before = generator_fingerprint.__wrapped__(str(code))
    (code / "b.sh").write_text("echo 2\n")
    after = generator_fingerprint.__wrapped__(str(code))
    (code / "sub" / "c.py").write_text("")
    added = generator_fingerprint.__wrapped__(str(code))
    assert len({before, after, added}) == 3


def test_an_override_function_is_rendered_every_time(tmp_path: Path,
                                                     caches: list[RenderCache]) -> None:
    """A function's code is not in any fingerprint: never cached."""
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent('''
        from procmgmt import Instance, Process

        def patch(native):
            return {**native, "startsecs": 2}

        def processes(settings):
            a = Process(name="a", foreground_process="/bin/sleep",
                        foreground_process_args=["1"], overrides={"supervisord": patch})
            b = Process(name="b", foreground_process="/bin/sleep",
                        foreground_process_args=["2"])
            return {"a": Instance(a), "b": Instance(b)}
    '''))
    settings = settings_in(tmp_path / "s", "supervisord")
    built(settings, str(path))
    built(settings, str(path))
    assert counts(caches) == (1, 1)


def test_values_outside_procmgmt_are_not_fingerprinted() -> None:
    class Mine:
        pass

    for value in (Mine(), len, lambda: 1, {"k": Mine()}):
        with pytest.raises(UncacheableError):
            fingerprint(value)
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(UncacheableError):
        fingerprint(looped)
    assert fingerprint((1, "1")) != fingerprint([1, "1"]) != fingerprint(("1", 1))
    assert fingerprint({1: "a"}) != fingerprint({"1": "a"})
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})


def test_a_host_lookup_is_checked_again(tmp_path: Path, caches: list[RenderCache]) -> None:
    """systemd resolves a bare executable in the process's path: when it appears
    there, the unit is rendered again with its absolute path."""
    tools = tmp_path / "tools"
    tools.mkdir()
    settings = settings_in(tmp_path / "s", "systemd")
    model = write_model(tmp_path / "m.py", web_exe="mytool", web_path=[str(tools)])
    first = built(settings, model)
    built(settings, model)
    assert counts(caches) == (5, 0)
    exe = tools / "mytool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    gen = built(settings, model)
    assert counts(caches) == (4, 1)
    assert gen.path != first.path
    assert gen.path == uncached(settings, model).path


def test_a_path_entry_s_bin_dir_is_checked_again(tmp_path: Path,
                                                 caches: list[RenderCache]) -> None:
    """A path entry contributes its ``bin`` subdir when it has one (decided on the host)."""
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    settings = settings_in(tmp_path / "s")
    model = write_model(tmp_path / "m.py", web_path=[str(prefix)])
    first = built(settings, model)
    (prefix / "bin").mkdir()
    gen = built(settings, model)
    assert counts(caches) == (4, 1)
    assert gen.path != first.path
    assert gen.path == uncached(settings, model).path


def test_an_entry_collected_by_gc_is_rendered_again(tmp_path: Path,
                                                    caches: list[RenderCache]) -> None:
    settings = settings_in(tmp_path / "s")
    model = write_model(tmp_path / "m.py")
    first = built(settings, model)
    store.remove(first.by_name()["db"].path)
    again = built(settings, model)
    assert counts(caches) == (4, 1)
    assert again.path == first.path
    assert os.path.isdir(first.by_name()["db"].path)


def test_warnings_come_back_with_a_cached_process(tmp_path: Path,
                                                  caches: list[RenderCache]) -> None:
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent('''
        from procmgmt import Instance, Process

        def processes(settings):
            a = Process(name="a", foreground_process="/bin/sleep",
                        foreground_process_args=["1"], restart="on-failure", restart_max=3)
            return {"a": Instance(a)}
    '''))
    settings = settings_in(tmp_path / "s", "supervisord")
    first = built(settings, str(path))
    again = built(settings, str(path))
    assert counts(caches) == (1, 0)
    assert first.warnings and again.warnings == first.warnings


def index_of(settings: Settings) -> Path:
    return Path(settings.procmgmt_dir) / "render-cache" / f"{settings.profile}.sysvinit.json"


@pytest.mark.parametrize("junk", ["", "{", "[]", '{"format": 1, "entries": {"k": 3}}',
                                  '{"format": 1, "entries": {"k": {"entry": "../x", '
                                  '"extra": {}, "warnings": [], "reads": []}}}'])
def test_a_corrupt_index_is_an_empty_cache(tmp_path: Path, caches: list[RenderCache],
                                           junk: str) -> None:
    settings = settings_in(tmp_path / "s")
    model = write_model(tmp_path / "m.py")
    first = built(settings, model)
    index_of(settings).write_text(junk)
    again = built(settings, model)
    assert counts(caches) == (0, 5)
    assert again.path == first.path
    assert len(json.loads(index_of(settings).read_text())["entries"]) == 5


@pytest.mark.parametrize("umask", [0o000, 0o077])
def test_the_index_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    settings = settings_in(tmp_path / "s")
    old = os.umask(umask)
    try:
        built(settings, write_model(tmp_path / "m.py"))
    finally:
        os.umask(old)
    index = index_of(settings)
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    assert stat.S_IMODE(index.parent.stat().st_mode) == 0o700
    assert not [n for n in os.listdir(index.parent) if n.startswith(".tmp-")]


def test_a_temporary_index_of_a_killed_build_is_removed_later(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "s")
    model = write_model(tmp_path / "m.py")
    built(settings, model)
    directory = index_of(settings).parent
    old, fresh = directory / ".tmp-killed", directory / ".tmp-writing"
    for path in (old, fresh):
        path.write_text("{")
    os.utime(old, (1, 1))
    built(settings, write_model(tmp_path / "m2.py", others=4))
    assert not old.exists() and fresh.exists()


def test_an_unwritable_cache_does_not_fail_the_build(tmp_path: Path,
                                                     caches: list[RenderCache]) -> None:
    settings = settings_in(tmp_path / "s")
    model = write_model(tmp_path / "m.py")
    index = index_of(settings)
    index.parent.mkdir(parents=True)
    index.mkdir()  # a directory where the index goes: it cannot be replaced
    first = built(settings, model)
    assert built(settings, model).path == first.path
    assert counts(caches) == (0, 5)


def test_two_builds_at_once_both_succeed(tmp_path: Path) -> None:
    """Each writes a whole index atomically: the last one wins, and it is valid."""
    state = tmp_path / "s"
    models = [write_model(tmp_path / "a.py"), write_model(tmp_path / "b.py", others=6)]
    argv = [sys.executable, "-m", "procmgmt", "build", "--state-dir", str(state), "-P",
            "sysvinit", "--force-disable-user-change"]
    procs = [subprocess.Popen([*argv, m], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for m in models for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    entries = json.loads(index_of(settings_in(state)).read_text())["entries"]
    assert len(entries) in (5, 8)
    assert len({out.strip() for out, _ in outs}) == 2
