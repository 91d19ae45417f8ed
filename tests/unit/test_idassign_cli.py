"""``procmgmt id-assign``: the command on the example model, model edits, builds with the ids."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from procmgmt.cli.main import main
from procmgmt.deploy.build import build, evaluate
from procmgmt.ids import with_ids
from procmgmt.settings import resolve
from tests.conftest import EXAMPLES

WEBAPPS = EXAMPLES / "webapps"
MODEL = WEBAPPS / "processes-ids.py"
RESOURCES = WEBAPPS / "idresources.json"

#: A model like processes-ids.py with a configurable list of instances.
MODEL_TEMPLATE = '''
import sys
sys.path.insert(0, {webapps!r})
from constructors import webapp
from procmgmt import Instance

def processes(settings):
    make = webapp(settings)
    out = {{}}
    for name in {names!r}:
        port = settings.ids["webapp_ports"][name]
        out[name] = Instance(make(port=port, instance_name=name),
                             requires_unique_ids_for=["webapp_ports", "uids", "gids"],
                             port=port)
    return out
'''


def write_model(path: Path, names: list[str]) -> Path:
    """A temporary model with the given instance names (ports read with settings.ids[...])."""
    path.write_text(MODEL_TEMPLATE.format(webapps=str(WEBAPPS), names=names))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path,
            *args: str) -> tuple[int, str, str]:
    """Run procmgmt in-process with a private state dir; (exit code, stdout, stderr)."""
    rc = main(["id-assign", "--state-dir", str(tmp_path / "state"), *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_id_assign_prints_an_ids_file_for_the_example(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """On the example model the command prints a JSON ids file with every pool filled."""
    rc, out, err = run_cli(capsys, tmp_path, "--id-resources", str(RESOURCES), str(MODEL))
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["ids"]["webapp_ports"] == {"webapp1": 5000, "webapp2": 5001}
    assert doc["ids"]["uids"] == {"webapp1": 2000, "webapp2": 2001}
    assert doc["ids"]["gids"] == {"webapp1": 2000, "webapp2": 2001}
    assert doc["last_assignments"] == {"gids": 2001, "uids": 2001, "webapp_ports": 5001}
    assert out == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert "assigned webapp_ports.webapp1 = 5000" in err


def test_output_file_is_written_and_rerun_is_stable(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--output-file writes the file; updating it in place with --ids changes nothing."""
    ids = tmp_path / "ids.json"
    rc, out, _ = run_cli(capsys, tmp_path, "--id-resources", str(RESOURCES),
                         "--output-file", str(ids), str(MODEL))
    assert (rc, out) == (0, "")
    first = ids.read_text()
    rc, out, err = run_cli(capsys, tmp_path, "--id-resources", str(RESOURCES), "--ids",
                           str(ids), "--output-file", str(ids), str(MODEL))
    assert (rc, out, err) == (0, "", "")
    assert ids.read_text() == first


def test_adding_an_instance_assigns_only_the_new_one(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A model edit that adds an instance gives it new ids; the others keep theirs."""
    model = write_model(tmp_path / "model.py", ["webapp1", "webapp2"])
    ids = tmp_path / "ids.json"
    args = ["--id-resources", str(RESOURCES), "--output-file", str(ids)]
    assert run_cli(capsys, tmp_path, *args, str(model))[0] == 0
    before = json.loads(ids.read_text())["ids"]

    write_model(model, ["webapp1", "webapp0", "webapp2"])
    rc, _, err = run_cli(capsys, tmp_path, *args, "--ids", str(ids), str(model))
    assert rc == 0, err
    after = json.loads(ids.read_text())["ids"]
    for resource, per_instance in before.items():
        assert {k: v for k, v in after[resource].items() if k != "webapp0"} == per_instance
        assert after[resource]["webapp0"] not in per_instance.values()
    assert after["webapp_ports"]["webapp0"] == 5002
    assert sorted(line for line in err.splitlines() if "assigned" in line) == [
        "procmgmt: assigned gids.webapp0 = 2002",
        "procmgmt: assigned uids.webapp0 = 2002",
        "procmgmt: assigned webapp_ports.webapp0 = 5002",
    ]


def test_removing_an_instance_drops_it_and_says_so(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A removed instance loses its ids; stderr tells which and why."""
    model = write_model(tmp_path / "model.py", ["webapp1", "webapp2"])
    ids = tmp_path / "ids.json"
    args = ["--id-resources", str(RESOURCES), "--output-file", str(ids)]
    run_cli(capsys, tmp_path, *args, str(model))
    write_model(model, ["webapp2"])
    rc, _, err = run_cli(capsys, tmp_path, *args, "--ids", str(ids), str(model))
    assert rc == 0
    doc = json.loads(ids.read_text())
    assert doc["ids"]["webapp_ports"] == {"webapp2": 5001}
    assert ("procmgmt: dropped webapp_ports.webapp1 = 5000: "
            "the instance is no longer in the model") in err.splitlines()


def test_build_uses_the_assigned_ports(tmp_path: Path) -> None:
    """A build of the model with the ids file renders the assigned ports (library wiring)."""
    ids = tmp_path / "ids.json"
    assert main(["id-assign", "--state-dir", str(tmp_path / "state"), "--id-resources",
                 str(RESOURCES), "--output-file", str(ids), str(MODEL)]) == 0
    # Move the ports so the rendered values cannot be the example's defaults by accident.
    doc = json.loads(ids.read_text())
    doc["ids"]["webapp_ports"] = {"webapp1": 5600, "webapp2": 5601}
    ids.write_text(json.dumps(doc))

    settings = with_ids(resolve({"state_dir": str(tmp_path / "state"),
                                 "process_manager": "sysvinit"}, {}), str(ids))
    model, specs = evaluate(str(MODEL), settings)
    assert {k: i.port for k, i in model.instances.items()} == {"webapp1": 5600, "webapp2": 5601}
    gen = build(model, specs, settings)
    rendered = {p.name: "".join(
        Path(root, f).read_text() for root, _, files in os.walk(p.path) for f in files)
        for p in gen.processes}
    assert "PORT=5600" in rendered["webapp1"]
    assert "PORT=5601" in rendered["webapp2"]


def test_model_without_ids_fails_validation_not_silently(tmp_path: Path) -> None:
    """Building the lookup-based example without ids names every missing ID and says to
    run id-assign (instead of failing later on port 0)."""
    from procmgmt.errors import IdsMissingError, ValidationError

    settings = dataclasses.replace(resolve({"state_dir": str(tmp_path)}, {}), ids={})
    with pytest.raises(ValidationError) as info:
        evaluate(str(MODEL), settings)
    assert "1-65535, got 0" in str(info.value)
    assert "requires an ID from 'webapp_ports' and no --ids file was given" in str(info.value)
    empty = tmp_path / "ids.json"
    empty.write_text('{"ids": {}, "last_assignments": {}}')
    settings = dataclasses.replace(settings, ids={}, ids_file=str(empty))
    with pytest.raises(IdsMissingError, match="'webapp1' requires an ID from 'webapp_ports'"):
        evaluate(str(MODEL), settings)


@pytest.mark.parametrize(("setup", "named", "message"), [
    ("missing-ids", "ids", "no such ids file"),
    ("malformed-ids", "ids", "not valid JSON"),
    ("bad-resources", "resources",
     "resource 'webapp_ports': 'min' (7) is greater than 'max' (6)"),
    ("unknown-resource", "resources", "requires IDs from 'gids'"),
])
def test_bad_input_exits_2_without_traceback(tmp_path: Path, setup: str, named: str,
                                             message: str) -> None:
    """Bad files are user errors: exit 2, one message naming the file, no traceback."""
    resources = tmp_path / "res.json"
    resources.write_text(RESOURCES.read_text())
    ids = tmp_path / "ids.json"
    extra: list[str] = []
    if setup == "missing-ids":
        extra = ["--ids", str(ids)]
    elif setup == "malformed-ids":
        ids.write_text('{"ids": ')
        extra = ["--ids", str(ids)]
    elif setup == "bad-resources":
        resources.write_text(json.dumps({"webapp_ports": {"min": 7, "max": 6}}))
    else:
        resources.write_text(json.dumps({"webapp_ports": {"min": 5000, "max": 6000},
                                         "uids": {"min": 2000, "max": 3000}}))
    proc = subprocess.run(
        [sys.executable, "-m", "procmgmt", "id-assign", "--state-dir", str(tmp_path / "s"),
         "--id-resources", str(resources), *extra, str(MODEL)],
        capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert message in proc.stderr
    assert str(ids if named == "ids" else resources) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_redirecting_onto_the_ids_file_is_detected(tmp_path: Path) -> None:
    """``--ids f > f`` is refused with an explanation instead of writing an empty result."""
    ids = tmp_path / "ids.json"
    assert main(["id-assign", "--state-dir", str(tmp_path / "state"), "--id-resources",
                 str(RESOURCES), "--output-file", str(ids), str(MODEL)]) == 0
    with ids.open("r+") as out:  # like the shell's '>', minus the truncation
        proc = subprocess.run(
            [sys.executable, "-m", "procmgmt", "id-assign", "--state-dir", str(tmp_path / "s"),
             "--id-resources", str(RESOURCES), "--ids", str(ids), str(MODEL)],
            stdout=out, stderr=subprocess.PIPE, text=True, check=False, timeout=60)
    assert proc.returncode == 2
    assert "stdout is redirected onto the ids file" in proc.stderr


def test_id_assign_is_a_registered_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The subcommand shows up in the help and requires --id-resources."""
    with pytest.raises(SystemExit) as exc:
        main(["id-assign", str(MODEL)])
    assert exc.value.code == 2
    assert "--id-resources" in capsys.readouterr().err
