"""Telling generations apart: the diff by process name, the listing, the model guard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from procmgmt.deploy.generations import Change, Diff, check_same_model, diff, listing
from procmgmt.deploy.profile import Profile
from procmgmt.errors import UsageError
from procmgmt.manifest import MANIFEST, DeployedProcess, Generation, dumps, from_json
from procmgmt.settings import Settings


def entry(root: Path, name: str, files: dict[str, str]) -> str:
    """A process's store entry holding ``files``."""
    path = root / f"{abs(hash(tuple(sorted(files.items())))):x}-{name}"
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    return str(path)


def proc(root: Path, name: str, files: dict[str, str], **kw: object) -> DeployedProcess:
    path = entry(root, name, files)
    return DeployedProcess(name=name, hash=Path(path).name.split("-")[0], path=path,
                           rank=0, **kw)  # type: ignore[arg-type]


def gen(*procs: DeployedProcess, backend: str = "sysvinit", model: str | None = "/m/a.py",
        path: str = "") -> Generation:
    return Generation(backend=backend, path=path, processes=procs, model=model)


def test_diff_names_added_removed_changed_and_what_changed(tmp_path: Path) -> None:
    """Same name, other files: changed, with the differing fields and files only."""
    keep = proc(tmp_path, "keep", {"etc/keep": "1"})
    old = gen(keep, proc(tmp_path, "web", {"etc/web": "port 1", "etc/same": "x"}),
              proc(tmp_path, "gone", {"etc/gone": "1"}))
    new = gen(keep,
              proc(tmp_path, "web", {"etc/web": "port 2", "etc/same": "x", "etc/new": "n"},
                   dependencies=("keep",), metadata={"port": 2}),
              proc(tmp_path, "fresh", {"etc/fresh": "1"}))
    d = diff(old, new)
    assert d.added == ("fresh",) and d.removed == ("gone",) and d.unchanged == ("keep",)
    assert d.changed == (Change("web", ("dependencies", "metadata"), ("etc/new", "etc/web")),)
    assert d.summary() == "added fresh; removed gone; changed web"
    assert d.lines() == ["added    fresh", "removed  gone",
                         "changed  web: fields dependencies, metadata; files etc/new, etc/web",
                         "1 unchanged: keep"]
    assert json.loads(json.dumps(d.to_json()))["changed"] == [
        {"name": "web", "fields": ["dependencies", "metadata"], "files": ["etc/new", "etc/web"]}]


def test_diff_against_nothing_and_another_backend(tmp_path: Path) -> None:
    """The first generation adds everything; another backend is said as such."""
    web = proc(tmp_path, "web", {"f": "1"})
    assert diff(None, gen(web)) == Diff(added=("web",))
    assert diff(None, gen()).summary() == "no change"
    moved = diff(gen(web), gen(web, backend="supervisord"))
    assert moved.backends == ("sysvinit", "supervisord")
    assert moved.summary().startswith("backend sysvinit -> supervisord")


def test_a_collected_store_entry_reports_no_files(tmp_path: Path) -> None:
    """A changed process whose old entry was garbage-collected: fields only."""
    old = DeployedProcess(name="web", hash="old", path=str(tmp_path / "gone"), rank=0)
    new = DeployedProcess(name="web", hash="new", path=str(tmp_path / "gone"), rank=1)
    assert diff(gen(old), gen(new)).changed == (Change("web", ("rank",), ()),)


def settings(tmp_path: Path) -> Settings:
    state = str(tmp_path / "state")
    return Settings(state_dir=state, runtime_dir=f"{state}/run", log_dir=f"{state}/log",
                    tmp_dir=f"{state}/tmp", cache_dir=f"{state}/cache",
                    spool_dir=f"{state}/spool", lock_dir=f"{state}/lock",
                    lib_dir=f"{state}/lib", force_disable_user_change=True,
                    process_manager="sysvinit", profile="processes", extra_params={},
                    calling_user="me", calling_group="me")


def record(profile: Profile, root: Path, g: Generation, n: int) -> None:
    """Store ``g``'s manifest and add it to ``profile`` as a generation."""
    where = root / f"gen{n}"
    where.mkdir()
    (where / MANIFEST).write_text(dumps(g))
    profile.add(str(where))


def test_listing_compares_each_generation_with_the_one_before(tmp_path: Path) -> None:
    """Backend, model and changes per generation; an unreadable entry is said."""
    profile = Profile(settings(tmp_path))
    web, db = proc(tmp_path, "web", {"f": "1"}), proc(tmp_path, "db", {"f": "2"})
    record(profile, tmp_path, gen(web), 1)
    record(profile, tmp_path, gen(web, db, model="/m/b.py"), 2)
    record(profile, tmp_path, gen(model=None), 3)
    broken = tmp_path / "gen4"
    broken.mkdir()
    (broken / MANIFEST).write_text("{")
    profile.add(str(broken))
    entries = listing(profile)
    assert [e.number for e in entries] == [1, 2, 3, 4]
    assert [e.current for e in entries] == [False, False, False, True]
    assert entries[0].diff.added == ("web",)
    assert entries[1].diff.added == ("db",) and entries[1].generation is not None
    assert entries[1].generation.model == "/m/b.py"
    assert entries[2].diff.removed == ("db", "web")
    assert entries[3].generation is None and "not valid JSON" in (entries[3].problem or "")
    data = entries[1].to_json()
    assert (data["backend"], data["model"], data["processes"]) == ("sysvinit", "/m/b.py", 2)


def test_another_model_file_is_refused_naming_both(tmp_path: Path) -> None:
    """A different model file needs --replace; the same file (or its directory) does not."""
    model = tmp_path / "processes.py"
    model.write_text("")
    current = gen(DeployedProcess(name="web", hash="h", path="/p", rank=0), model=str(model))
    check_same_model(current, 1, str(model), "processes")
    check_same_model(current, 1, str(tmp_path), "processes")  # a directory reads processes.py
    check_same_model(current, 1, None, "processes")            # undeploy
    check_same_model(None, None, "/other.py", "processes")     # nothing deployed
    check_same_model(gen(model=str(model)), 1, "/other.py", "processes")  # nothing runs
    check_same_model(gen(DeployedProcess(name="web", hash="h", path="/p", rank=0), model=None),
                     1, "/other.py", "processes")             # written before models were kept
    with pytest.raises(UsageError) as exc:
        check_same_model(current, 7, "/srv/other.py", "processes")
    message = str(exc.value)
    assert str(model) in message and "/srv/other.py" in message
    assert "--replace" in message and "generation 7" in message


def test_a_manifest_without_a_model_loads(tmp_path: Path) -> None:
    """Manifests written before the model was recorded still load (model None)."""
    data = json.loads(dumps(gen(model="/m/a.py")))
    del data["model"]
    assert from_json(data, str(tmp_path)).model is None
