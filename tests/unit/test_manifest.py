"""The generation manifest: one field-derived JSON form, old files still load,
damaged files name the file and the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from procmgmt.errors import GenerationError, ManifestError
from procmgmt.manifest import (
    FORMAT,
    MANIFEST,
    DeployedProcess,
    Generation,
    dumps,
    from_json,
    load_generation,
    to_json,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "manifest"


def full_generation(path: str = "/store/gen") -> Generation:
    """A generation with every field set to something other than its default."""
    proc = DeployedProcess(
        name="web", hash="h1", path="/store/h1-web", rank=1, dependencies=("db",),
        pid_file="/run/web.pid", user="www", extra={"unit": "web.service", "n": [1, 2]},
        readiness={"kind": "tcp", "port": 80}, credentials={"users": {"www": {"uid": 33}}},
        metadata={"port": 80}, executables=("/bin/web", "webd"), search_path="/opt/bin",
        directory="/srv/web", reload_signal="USR1")
    db = DeployedProcess(name="db", hash="h0", path="/store/h0-db", rank=0)
    return Generation(backend="systemd", path=path, processes=(db, proc),
                      extras_path="/store/base", settings={"profile": "p"},
                      warnings=("systemd: web: careful",), model="/m/processes.py")


def write(tmp_path: Path, data: Any) -> Path:
    gen = tmp_path / "gen"
    gen.mkdir(exist_ok=True)
    (gen / MANIFEST).write_text(json.dumps(data) if not isinstance(data, str) else data)
    return gen


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    """Written and read back, a generation is equal to itself (path is where it is)."""
    gen = full_generation()
    assert from_json(json.loads(dumps(gen)), gen.path) == gen
    stored = write(tmp_path, json.loads(dumps(gen)))
    assert load_generation(str(stored)) == Generation(**{**gen.__dict__, "path": str(stored)})


def test_json_keys_are_the_format_1_keys() -> None:
    """path is not stored, extras_path is stored as 'extras', tuples as lists."""
    data = to_json(full_generation())
    assert sorted(data) == ["backend", "extras", "format", "model", "processes", "settings",
                            "warnings"]
    assert data["format"] == FORMAT == 1
    assert data["extras"] == "/store/base"
    assert data["processes"][1]["executables"] == ["/bin/web", "webd"]
    assert "path" in data["processes"][1]


def test_a_sparse_field_is_written_only_when_set() -> None:
    """reload_signal, added to format 1 later, is left out when None (older manifests
    are rewritten byte for byte) and kept when set."""
    procs = {p["name"]: p for p in to_json(full_generation())["processes"]}
    assert procs["web"]["reload_signal"] == "USR1"
    assert "reload_signal" not in procs["db"]


def test_a_manifest_written_by_format_1_loads_and_is_rewritten_byte_for_byte(
        tmp_path: Path) -> None:
    """A manifest of an already deployed generation still loads, and writing it
    again gives the same bytes (so the store hash of an equal generation is equal)."""
    gen_dir = tmp_path / "gen"
    gen_dir.mkdir()
    shutil.copy(FIXTURES / "format1.json", gen_dir / MANIFEST)
    gen = load_generation(str(gen_dir))
    assert gen.backend == "cygrunsrv" and gen.path == str(gen_dir)
    assert [p.name for p in gen.processes][:2] == ["webapp1", "webapp5"]
    web2 = gen.by_name()["webapp2"]
    assert isinstance(web2.dependencies, tuple) and isinstance(web2.executables, tuple)
    assert web2.rank == 1 and web2.readiness["kind"] == "tcp"
    assert len(gen.warnings) > 0 and gen.extras_path is None
    assert dumps(gen) == (FIXTURES / "format1.json").read_text()


def test_optional_fields_missing_from_an_older_manifest_take_their_defaults() -> None:
    """Fields added later (executables, search_path, ...) may be absent."""
    data = {"format": 1, "backend": "sysvinit",
            "processes": [{"name": "a", "hash": "h", "path": "/s/a", "rank": 0}]}
    gen = from_json(data, "/g")
    assert gen.processes == (DeployedProcess(name="a", hash="h", path="/s/a", rank=0),)
    assert gen.settings == {} and gen.warnings == () and gen.extras_path is None


@pytest.mark.parametrize(("change", "field", "says"), [
    (lambda d: d["processes"][1].pop("rank"), "processes[1].rank", "missing"),
    (lambda d: d["processes"][0].update(rank="3"), "processes[0].rank",
     "expected an integer, found a string ('3')"),
    (lambda d: d["processes"][1].update(executables="/bin/web"),
     "processes[1].executables", "expected a list"),
    (lambda d: d["processes"][1].update(dependencies=["db", 7]),
     "processes[1].dependencies[1]", "expected a string"),
    (lambda d: d["processes"][1].update(extra=[]), "processes[1].extra",
     "expected a JSON object"),
    (lambda d: d.update(processes={"web": {}}), "processes", "expected a list"),
    (lambda d: d["processes"].__setitem__(0, "db"), "processes[0]", "expected a JSON object"),
    (lambda d: d.pop("backend"), "backend", "missing"),
    (lambda d: d.pop("format"), "format", "missing"),
    (lambda d: d.update(format="1"), "format", "expected a positive integer"),
    (lambda d: d.update(warnings=[None]), "warnings[0]", "expected a string, found null"),
])
def test_a_damaged_manifest_names_the_file_and_the_field(
        tmp_path: Path, change: Any, field: str, says: str) -> None:
    """Instead of a KeyError or TypeError traceback: file, field, what is wrong, what helps."""
    data = to_json(full_generation())
    change(data)
    gen_dir = write(tmp_path, data)
    with pytest.raises(ManifestError) as info:
        load_generation(str(gen_dir))
    err = info.value
    assert err.file == str(gen_dir / MANIFEST) and err.field == field
    assert f"{gen_dir / MANIFEST}: {field}: {says}" in str(err)
    assert "procmgmt switch" in str(err)
    assert isinstance(err, GenerationError) and err.exit_code == 2


@pytest.mark.parametrize(("text", "says"), [
    ('{"format": 1, "backend": ', "not valid JSON"),
    ("[1, 2]", "expected a JSON object, found a list"),
    (b"\xff\xfe{}", "not UTF-8 text"),
])
def test_a_manifest_that_is_no_manifest_names_the_file(tmp_path: Path, text: str | bytes,
                                                       says: str) -> None:
    gen_dir = tmp_path / "gen"
    gen_dir.mkdir()
    target = gen_dir / MANIFEST
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text)
    with pytest.raises(ManifestError, match=says) as info:
        load_generation(str(gen_dir))
    assert info.value.file == str(target) and info.value.field is None


def test_a_newer_format_asks_for_a_newer_procmgmt() -> None:
    data = {**to_json(full_generation()), "format": FORMAT + 1}
    with pytest.raises(ManifestError, match=r"newer procmgmt.*upgrade procmgmt") as info:
        from_json(data, "/g")
    assert info.value.field == "format" and "damaged" not in str(info.value)


def test_a_missing_manifest_is_an_os_error(tmp_path: Path) -> None:
    """Not there at all is a file error (callers that skip unreadable generations
    catch OSError), not a damaged manifest."""
    with pytest.raises(FileNotFoundError):
        load_generation(str(tmp_path))
