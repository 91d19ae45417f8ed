"""switch --list-generations / --diff / --replace and graph without MODEL, on recorded
generations (manifests written by the test: nothing runs)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from procmgmt.deploy.profile import Profile
from procmgmt.manifest import MANIFEST, DeployedProcess, Generation, dumps
from procmgmt.settings import resolve
from tests.cli.test_cli import run
from tests.conftest import EXAMPLES

SIMPLE = EXAMPLES / "webapps" / "processes.py"
ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"


def recorded(state: Path, model: Path | str, *names: str, backend: str = "sysvinit") -> None:
    """Record a generation of ``model`` with processes ``names`` (a chain: each needs
    the one before) as the current one of the default profile."""
    procs = tuple(DeployedProcess(name=n, hash=f"h{i}{n}", path=str(state / "none"), rank=i,
                                  dependencies=(names[i - 1],) if i else ())
                  for i, n in enumerate(names))
    gen = Generation(backend=backend, path="", processes=procs, model=str(model))
    profile = Profile(resolve({"state_dir": str(state)}, environ={}))
    where = state / "fake-store" / f"gen{len(profile.generations()) + 1}"
    where.mkdir(parents=True)
    (where / MANIFEST).write_text(dumps(gen))
    profile.add(str(where))


def opts(state: Path) -> list[str]:
    return ["--state-dir", str(state), "-P", "sysvinit", "--force-disable-user-change"]


def test_list_generations_shows_backend_model_count_and_changes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    recorded(state, "/srv/a.py", "db")
    recorded(state, "/srv/a.py", "db", "web")
    rc, out, _ = run(capsys, "switch", *opts(state), "--list-generations")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 2
    assert lines[0].split()[0] == "1" and "(current)" not in lines[0]
    assert "sysvinit" in lines[0] and "1 process " in lines[0] and "/srv/a.py" in lines[0]
    assert lines[0].endswith("added db")
    assert "(current)" in lines[1] and "2 processes" in lines[1]
    assert lines[1].endswith("added web")
    rc, out, _ = run(capsys, "switch", *opts(state), "--list-generations", "--json")
    data = json.loads(out)
    assert [(g["number"], g["current"], g["processes"]) for g in data] == [
        (1, False, 1), (2, True, 2)]
    assert data[1]["changes"]["added"] == ["web"] and data[1]["model"] == "/srv/a.py"


def test_json_only_with_a_listing_or_diff(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "switch", *opts(tmp_path), "--json", str(SIMPLE))
    assert rc == 2 and "--json goes with --list-generations or --diff" in err


def test_another_model_is_refused_before_anything_is_built(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The error names both models and --replace; the store and profile stay as they were."""
    state = tmp_path / "state"
    recorded(state, "/srv/other/processes.py", "webapp")
    store = state / "lib" / "procmgmt" / "store"
    before = sorted(os.listdir(store)) if store.exists() else []
    rc, _, err = run(capsys, "switch", *opts(state), str(SIMPLE))
    assert rc == 2
    assert "/srv/other/processes.py" in err and str(SIMPLE) in err and "--replace" in err
    assert (sorted(os.listdir(store)) if store.exists() else []) == before
    rc, out, _ = run(capsys, "switch", *opts(state), "--list-generations")
    assert len(out.splitlines()) == 1


def test_diff_deploys_nothing_and_notes_replace(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    recorded(state, SIMPLE, "webapp", "old")
    rc, out, err = run(capsys, "switch", *opts(state), "--diff", str(SIMPLE))
    assert rc == 0 and err == ""
    assert out.splitlines()[0].startswith("from generation 1 (sysvinit, ")
    assert "  added    webapp1" in out and "  removed  old" in out
    assert "  changed  webapp: fields " in out and "rank" not in out.split("webapp:")[1]
    rc, out, err = run(capsys, "switch", *opts(state), "--diff", "--json", str(ADVANCED))
    data = json.loads(out)
    assert rc == 0 and data["removed"] == ["old", "webapp"] and data["from"]["generation"] == 1
    assert data["added"] == [f"webapp{i}" for i in range(1, 7)]
    assert "note:" in err and "--replace" in err
    rc, out, _ = run(capsys, "switch", *opts(state), "--list-generations")
    assert len(out.splitlines()) == 1, "a diff records no generation"


def test_diff_refuses_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(capsys, "switch", *opts(tmp_path), "--diff", "--rollback")
    assert rc == 2 and "--dry-run" in err


def test_graph_without_model_draws_the_current_generation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROCMGMT_PROCESSES", raising=False)
    state = tmp_path / "state"
    rc, _, err = run(capsys, "graph", "--state-dir", str(state))
    assert rc == 2 and "nothing is deployed" in err and "MODEL" in err
    recorded(state, "/srv/a.py", "db", "web")
    rc, out, _ = run(capsys, "graph", "--state-dir", str(state))
    assert rc == 0 and '"web" -> "db";' in out and 'label="db\\nrank 0"' in out
    rc, out, _ = run(capsys, "graph", "--state-dir", str(state), "--format", "mermaid")
    assert rc == 0 and "p0 --> p1" in out
    rc, out, _ = run(capsys, "graph", "--state-dir", str(state), str(ADVANCED))
    assert rc == 0 and '"webapp4" -> "webapp2";' in out, "MODEL still wins"


def test_analyze_names_the_current_generation(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    recorded(state, "/srv/a.py", "db", "web")
    timeline = state / "lib" / "procmgmt" / "profiles" / "processes.last-switch.json"
    timeline.write_text(json.dumps({"started_at": 0, "processes": {
        "db": {"start": 0.0, "ready": 0.5, "dependencies": []},
        "web": {"start": 0.5, "ready": 1.0, "dependencies": ["db"]}}}))
    rc, out, _ = run(capsys, "analyze", "critical-chain", "--state-dir", str(state))
    assert rc == 0
    assert "current generation 1 (sysvinit, 2 processes)" in out.splitlines()[0]
    assert "web @1.000s" in out and "└─db @0.500s" in out


def test_a_refused_switch_neither_waits_for_nor_takes_the_profile_lock(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Another procmgmt holds the profile lock: a switch to another model without
    --replace is refused at once (it would otherwise wait for the lock), and with
    --assign-ids the ids file is left as it was."""
    import fcntl
    import threading

    state = tmp_path / "state"
    recorded(state, "/srv/other/processes.py", "webapp")
    settings = resolve({"state_dir": str(state)}, environ={})
    os.makedirs(settings.profiles_dir, exist_ok=True)
    ids = tmp_path / "ids.json"
    ids.write_text("{}\n")
    resources = tmp_path / "resources.json"
    resources.write_text(json.dumps({"webappPorts": {"min": 5000, "max": 5100}}))
    fd = os.open(os.path.join(settings.profiles_dir, f"{settings.profile}.lock"),
                 os.O_RDWR | os.O_CREAT, 0o600)
    results: list[tuple[int, str, str]] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for extra in ([], ["--assign-ids", "--id-resources", str(resources), "--ids",
                           str(ids)]):
            worker = threading.Thread(target=lambda extra=extra: results.append(
                run(capsys, "switch", *opts(state), *extra, str(SIMPLE))), daemon=True)
            worker.start()
            worker.join(20)
            assert not worker.is_alive(), "the refused switch waits for the profile lock"
    finally:
        os.close(fd)
    for rc, out, err in results:
        assert rc == 2 and "--replace" in err and "waiting for" not in out + err
    assert ids.read_text() == "{}\n", "--assign-ids wrote the ids file of a refused switch"
