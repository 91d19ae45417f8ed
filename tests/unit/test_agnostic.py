"""Agnostic JSON specs: writing them (-P none), reading them back, and nix-processmgmt's own JSON.

The central property: translating a model late, from its specs, gives the
same normalized specs, and therefore byte-identical native files for every
registered backend, as translating the Python model directly. The nix
fixtures (tests/fixtures/nix) check that JSON written by nix-processmgmt
with ``processManager = null`` (camelCase keys, store-path dependencies)
translates as its Nix definition says. Every malformed input must end in
one clear message naming the file (and key), exit 2, no traceback.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from procmgmt import Credentials, Group, Instance, Process, User
from procmgmt.agnostic import load_specs, spec_files
from procmgmt.backends import backend_names, deployable_names, get_backend
from procmgmt.cli.main import main
from procmgmt.deploy.build import evaluate, render
from procmgmt.deploy.store import write_files
from procmgmt.errors import SpecError, ValidationError
from procmgmt.model.loader import Model
from procmgmt.readiness import TCP, Command, Liveness
from procmgmt.settings import Settings
from procmgmt.validate import validate
from tests.conftest import EXAMPLES, golden_settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nix"
ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The CLI in-process: (exit status, stdout, stderr)."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def write_specs(model: Model, settings: Settings, out: Path) -> None:
    """The model's specs as files in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_files(str(out), spec_files(model, settings))


def tree(model: Model, settings: Settings, backend: str) -> dict[str, str]:
    """process/path -> content (or symlink target) of everything ``backend`` renders."""
    settings = settings.with_process_manager(backend)
    result = render(model, validate(model, settings), settings, get_backend(backend))
    out = {f"{r.spec.name}/{f.path}": f.content if f.content is not None else f"-> {f.symlink}"
           for r in result.processes for f in r.files}
    out.update({f"_generation/{f.path}": f.content or "" for f in result.generation_files})
    return out


# --------------------------------------------------------------------------- round trip

@pytest.mark.parametrize("privileged", [False, True])
def test_round_trip_gives_the_same_specs(privileged: bool, tmp_path: Path) -> None:
    """Specs from the JSON equal the specs from the Python model, dependencies included."""
    settings = golden_settings(privileged)
    model, direct = evaluate(str(ADVANCED), settings)
    write_specs(model, settings, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"webapp{i}.json" for i in range(1, 7)]

    late_model = load_specs(str(tmp_path / "webapp4.json"))
    late = validate(late_model, settings)
    # webapp4's closure only: webapp1..4, in the same start order.
    assert [s.name for s in late] == [s.name for s in direct if s.name in
                                      {"webapp1", "webapp2", "webapp3", "webapp4"}]
    by_name = {s.name: s for s in direct}
    for spec in late:
        assert spec == by_name[spec.name]


@pytest.mark.parametrize("backend", backend_names())
def test_late_translation_renders_identical_files(backend: str, tmp_path: Path) -> None:
    """For every registered backend, the files from the specs are byte-identical to direct ones
    (generation files, which may list the processes, to those of the same processes)."""
    settings = golden_settings(True, backend)
    model, _ = evaluate(str(ADVANCED), settings)
    write_specs(model, settings, tmp_path)
    for top in ("webapp4.json", "webapp6.json"):
        late_model = load_specs(str(tmp_path / top))
        late = tree(late_model, settings, backend)
        direct = tree(model, settings, backend)
        assert late, "nothing was rendered"
        # By the model, not the files: an export writes only generation files.
        names = {str(i.process.effective_name) for i in late_model.instances.values()}
        same = dataclasses.replace(model, instances={
            k: i for k, i in model.instances.items() if i.process.effective_name in names})
        expected = {k: v for k, v in direct.items() if k.split("/", 1)[0] in names}
        expected.update({k: v for k, v in tree(same, settings, backend).items()
                         if k.startswith("_generation/")})
        assert late == expected


def test_raw_properties_are_written_not_resolved(tmp_path: Path) -> None:
    """process/args/daemon_extra_args stay shortcuts; dependencies are relative spec names."""
    settings = golden_settings(True)
    model, _ = evaluate(str(ADVANCED), settings)
    files = {f.path: json.loads(f.content or "") for f in spec_files(model, settings)}
    webapp4 = files["webapp4.json"]
    assert webapp4["process"] and webapp4["daemon_extra_args"] == ["-D"]
    assert "daemon" not in webapp4 and "daemon_args" not in webapp4
    assert webapp4["dependencies"] == ["webapp2.json", "webapp3.json"]
    assert webapp4["credentials"] == {
        "groups": {"webapp4": {}},
        "users": {"webapp4": {"group": "webapp4", "description": "Test webapp webapp4"}},
    }
    assert "dependencies" not in files["webapp1.json"]


def test_foreground_mode_keeps_daemon_null(tmp_path: Path) -> None:
    """daemon=None ("cannot daemonize") is written as null and honoured after reading back."""
    settings = dataclasses.replace(golden_settings(False),
                                   extra_params={"webapp_mode": "foreground"})
    model, _ = evaluate(str(EXAMPLES / "webapps" / "processes.py"), settings)
    write_specs(model, settings, tmp_path)
    data = json.loads((tmp_path / "webapp.json").read_text())
    assert data["daemon"] is None and "process" not in data
    spec = validate(load_specs(str(tmp_path / "webapp.json")), settings)[0]
    assert spec.daemon is None and spec.foreground


def _every_field_model(tmp_path: Path) -> Model:
    db = Process(name="db", process="/bin/sleep", args=["1000"], readiness=TCP(port=5432))
    app = Process(
        name="app", description="An app", initialize="mkdir -p /srv/app\n",
        daemon="/bin/appd", daemon_args=["--fork"], foreground_process="/bin/app",
        foreground_process_extra_args=["-f"], instance_name="app", pid_file="/run/app.pid",
        path=["/opt/tools"], environment={"A": "1", "B": 2}, directory="/srv",
        umask=0o027, nice=5, user="app", dependencies=[db],
        restart="on-failure", restart_delay=2.5, restart_max=3, stop_timeout=20,
        liveness=Liveness(Command(command=["/bin/app-check", "--quick"]), period=7, timeout=2,
                          failures=4, delay=1.5),
        credentials=Credentials(groups={"app": Group(gid=900)},
                                users={"app": User(uid=900, group="app", home_dir="/srv/app",
                                                   shell="/bin/sh", create_home=True)}),
        overrides={"systemd": {"Service": {"Restart": "always"}},
                   "sysvinit": {"runlevels": [3, 5]}},
    )
    return Model(file=str(tmp_path / "m.py"), instances={"db": Instance(db),
                                                         "app": Instance(app)})


def test_every_field_round_trips(tmp_path: Path) -> None:
    """Each Process field (umask as int, readiness, liveness, overrides, home dirs)
    survives JSON."""
    settings = golden_settings(True)
    model = _every_field_model(tmp_path)
    direct = {s.name: s for s in validate(model, settings)}
    write_specs(model, settings, tmp_path / "specs")
    app = json.loads((tmp_path / "specs" / "app.json").read_text())
    assert app["umask"] == "0027" and app["environment"] == {"A": "1", "B": 2}
    assert (app["restart"], app["restart_delay"], app["restart_max"], app["stop_timeout"]) \
        == ("on-failure", 2.5, 3, 20)
    assert app["liveness"]["check"]["command"] == ["/bin/app-check", "--quick"]
    assert (app["liveness"]["period"], app["liveness"]["failures"]) == (7, 4)
    db = json.loads((tmp_path / "specs" / "db.json").read_text())
    assert db["readiness"]["kind"] == "tcp" and db["readiness"]["port"] == 5432
    late = validate(load_specs(str(tmp_path / "specs" / "app.json")), settings)
    assert {s.name: s for s in late} == direct


def test_function_override_is_an_error_naming_process_and_field(tmp_path: Path) -> None:
    """A callable override cannot become JSON: reported, not dropped."""
    p = Process(name="svc", process="/bin/true",
                overrides={"systemd": lambda native: native,
                           "supervisord": {"bad": {1, 2}}})
    model = Model(file=str(tmp_path / "m.py"), instances={"svc": Instance(p)})
    with pytest.raises(ValidationError) as info:
        spec_files(model, golden_settings())
    fields = {(pr.instance, pr.field) for pr in info.value.problems}
    assert fields == {("svc", "overrides.systemd"), ("svc", "overrides.supervisord.bad")}
    assert "function" in str(info.value) and "set" in str(info.value)


# --------------------------------------------------------------------------- nix's JSON

def test_nix_fixture_camel_case_and_store_path_dependency() -> None:
    """nginx.json -> its store-path dependency is webapp.json next to it; keys map 1:1."""
    model = load_specs(str(FIXTURES / "nginx.json"))
    assert list(model.instances) == ["webapp", "nginx"]
    specs = {s.name: s for s in validate(model, golden_settings(True))}
    webapp, nginx = specs["webapp"], specs["nginx"]
    assert nginx.dependencies == ("webapp",) and nginx.rank == 1
    assert webapp.daemon == webapp.foreground == \
        "/nix/store/8qs2yz4mbkn5wjzfzsk9a6mz1ivvq3qs-webapp/bin/webapp"
    assert webapp.daemon_args == ("-D",) and webapp.foreground_args == ()
    assert webapp.environment["PORT"] == "5000"  # a Nix integer, stringified
    assert webapp.instance_name == "webapp" and webapp.user == "webapp"
    assert webapp.credentials.users["webapp"] == User(group="webapp", description="Webapp")
    conf = "/nix/store/2a3hvcj4fd6f0jzfa5m6ymz6gyg2kw6c-nginx.conf"
    assert nginx.daemon_args == ("-p", "/var/nginx", "-c", conf, "-g", "pid /var/run/nginx.pid;")
    assert nginx.foreground_args == ("-p", "/var/nginx", "-c", conf, "-g", "daemon off;")
    assert nginx.initialize.startswith("mkdir -p /var/nginx/logs")


def test_nix_fixture_translates_for_sysvinit_and_systemd() -> None:
    """The runlevels override applies; sysvinit runs the daemon, systemd the foreground."""
    model = load_specs(str(FIXTURES / "nginx.json"))
    settings = golden_settings(True)
    sysv = tree(model, settings, "sysvinit")
    assert sorted(k for k in sysv if "/rc.d/rc" in k and "/S" in k) == [
        f"{n}/etc/rc.d/rc{lv}.d/S{seq}{n}" for n, seq in (("nginx", "01"), ("webapp", "00"))
        for lv in (3, 4, 5)]
    script = sysv["webapp/etc/rc.d/init.d/webapp"]
    assert "-webapp/bin/webapp -D" in script
    assert "Should-Start:      webapp" in sysv["nginx/etc/rc.d/init.d/nginx"]
    unit = tree(model, settings, "systemd")["nginx/etc/systemd/system/procmgmt-nginx.service"]
    assert "Wants=procmgmt-webapp.service" in unit and "After=procmgmt-webapp.service" in unit
    assert "'daemon off;'" in unit or '"daemon off;"' in unit


def test_store_path_dependency_read_inside_the_store(tmp_path: Path) -> None:
    """/<store>/<hash>-<name> resolves to <that dir>/<name>.json when it exists (as in Nix)."""
    entry = tmp_path / "store" / "0123456789abcdfghijklmnpqrsvwxyz-db"
    entry.mkdir(parents=True)
    (entry / "db.json").write_text(json.dumps({"name": "db", "process": "/bin/db"}))
    # A decoy next to the referencing file must not win over the store entry.
    (tmp_path / "db.json").write_text(json.dumps({"name": "decoy", "process": "/bin/x"}))
    (tmp_path / "app.json").write_text(json.dumps(
        {"name": "app", "process": "/bin/app", "dependencies": [str(entry)]}))
    model = load_specs(str(tmp_path / "app.json"))
    assert list(model.instances) == ["db", "app"]


def test_user_home_keys_in_camel_case(tmp_path: Path) -> None:
    """homeDir/createHomeDir/createHomeDirOnly and gid map onto User/Group."""
    (tmp_path / "svc.json").write_text(json.dumps({
        "name": "svc", "process": "/bin/svc",
        "credentials": {"groups": {"svc": {"gid": 2000}},
                        "users": {"svc": {"uid": 2000, "group": "svc", "homeDir": "/var/svc",
                                          "createHomeDir": True, "shell": "/bin/sh"},
                                  "state": {"homeDir": "/var/st", "createHomeDirOnly": True}}},
    }))
    creds = load_specs(str(tmp_path / "svc.json")).instances["svc"].process.credentials
    assert creds.groups == {"svc": Group(gid=2000)}
    assert creds.users["svc"] == User(uid=2000, group="svc", home_dir="/var/svc",
                                      create_home=True, shell="/bin/sh")
    assert creds.users["state"] == User(home_dir="/var/st", create_home_only=True)


# --------------------------------------------------------------------------- errors

def _spec(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.mark.parametrize(("files", "expected"), [
    ({"a.json": '{"name": "a",\n "process": }'}, ["a.json:2:", "not valid JSON"]),
    ({"a.json": "[1, 2]"}, ["a.json", "expected a JSON object"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "dependencies": ["b.json"]}},
     ["a.json", "dependency 'b.json'", "no spec file found", "b.json"]),
    ({"a.json": {"name": "a", "process": "/bin/a",
                 "dependencies": ["/nix/store/00000000000000000000000000000000-gone"]}},
     ["a.json", "no spec file found", "gone.json"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "foregroundProces": "/bin/a"}},
     ["a.json", "unknown key 'foregroundProces'", "known keys:",
      "foreground_process (foregroundProcess)", "pid_file (pidFile)"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "pidFile": "/x", "pid_file": "/y"}},
     ["a.json", "given twice"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "dependencies": ["b.json"]},
      "b.json": {"name": "b", "process": "/bin/b", "dependencies": ["a.json"]}},
     ["dependency cycle: a.json -> b.json -> a.json"]),
    ({"a.json": {"name": "a", "process": "/bin/a",
                 "credentials": {"users": {"a": {"homedir": "/x"}}}}},
     ["a.json", "unknown key credentials.users.a.'homedir'", "home_dir (homeDir)"]),
    ({"a.json": {"name": "a", "process": "/bin/a",
                 "credentials": {"users": {"a": {"createHomeDir": "yes"}}}}},
     ["a.json", "create_home must be a boolean"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "readiness": {"kind": "smoke"}}},
     ["a.json", "readiness.kind 'smoke' is unknown", "tcp"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "readiness": {"kind": "tcp", "prot": 1}}},
     ["a.json", "unknown key readiness.'prot'", "port"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "postInstall": "cp x $out"}},
     ["a.json", "postInstall"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "dependencies": "b.json"}},
     ["a.json", "dependencies must be a list"]),
    ({"a.json": {"name": "a", "process": "/bin/a", "dependencies": ["b.json"]},
      "b.json": {"name": "a", "process": "/bin/b"}},
     ["process name 'a' is also used by"]),
    # Not a JSON problem but a model problem: validation names the (dependency's) file.
    ({"a.json": {"name": "a", "process": "/bin/a", "dependencies": ["b.json"]},
      "b.json": {"name": "b", "process": "/bin/b", "nice": 99}},
     ["b.json", "b.nice", "between -20 and 19"]),
])
def test_bad_specs_exit_2_with_a_clear_message(
        files: dict[str, Any], expected: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """generate-config on a broken spec: exit 2, the file (and key) named, no traceback."""
    for name, data in files.items():
        _spec(tmp_path, name, data)
    rc, out, err = run(capsys, "generate-config", "-P", "sysvinit", "--state-dir",
                       str(tmp_path / "state"), "-o", str(tmp_path / "out"),
                       str(tmp_path / "a.json"))
    assert rc == 2, (out, err)
    assert "Traceback" not in err and "internal error" not in err
    for text in expected:
        assert text in err, (text, err)
    assert not (tmp_path / "out").exists()


def test_missing_spec_file_and_unknown_key_raise_spec_error(tmp_path: Path) -> None:
    """The library raises SpecError (a UserError) for the CLI to present."""
    with pytest.raises(SpecError, match="no such spec file"):
        load_specs(str(tmp_path / "nope.json"))
    _spec(tmp_path, "x.json", {"name": "x", "bogus": 1})
    with pytest.raises(SpecError, match=r"x\.json: unknown key 'bogus'"):
        load_specs(str(tmp_path / "x.json"))


# --------------------------------------------------------------------------- CLI

def test_generate_config_needs_an_explicit_backend(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """No -P (nix: "No process manager was specified!") and -P none are usage errors."""
    monkeypatch.delenv("PROCMGMT_PROCESS_MANAGER", raising=False)
    spec = str(FIXTURES / "webapp.json")
    rc, _, err = run(capsys, "generate-config", "--state-dir", str(tmp_path), spec)
    assert rc == 2 and "no process manager given" in err
    rc, _, err = run(capsys, "generate-config", "-P", "none", "--state-dir", str(tmp_path), spec)
    assert rc == 2 and "pass a backend" in err
    rc, _, err = run(capsys, "generate-config", "-P", "nosuch", "--state-dir", str(tmp_path),
                     spec)
    assert rc == 2 and "unknown process manager 'nosuch'" in err


def test_build_none_writes_specs_into_the_store(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """build -P none prints a store entry of <name>.json files; generate-config reads one."""
    state = str(tmp_path / "state")
    rc, out, err = run(capsys, "build", "-P", "none", "--state-dir", state, str(ADVANCED))
    assert rc == 0, err
    entry = Path(out.strip())
    assert entry.parent == tmp_path / "state" / "lib" / "procmgmt" / "store"
    assert entry.name.endswith("-none")
    assert sorted(p.name for p in entry.iterdir()) == [f"webapp{i}.json" for i in range(1, 7)]
    rc, out, err = run(capsys, "generate-config", "-P", "supervisord", "--state-dir", state,
                       str(entry / "webapp6.json"))
    assert rc == 0, err
    native = Path(out.strip())
    assert native.name.endswith("-webapp6-supervisord")
    assert {p.name for p in (native / "conf.d").iterdir()} >= {"webapp5.conf", "webapp6.conf"}


def test_generate_none_into_a_directory(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """generate -P none -o DIR writes the same specs into a plain directory."""
    rc, out, err = run(capsys, "generate", "-P", "none", "--state-dir", str(tmp_path / "s"),
                       "-o", str(tmp_path / "out"), str(ADVANCED))
    assert rc == 0, err
    assert "wrote 6 files for 6 processes" in out
    assert json.loads((tmp_path / "out" / "webapp2.json").read_text())["dependencies"] == [
        "webapp1.json"]


def test_none_cannot_be_deployed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """switch -P none explains the build/generate-config route instead of 'unknown backend'."""
    rc, _, err = run(capsys, "switch", "-P", "none", "--state-dir", str(tmp_path), str(ADVANCED))
    assert rc == 2 and "generate-config" in err


def test_none_is_a_backend_that_does_not_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    """'none' is registered like every backend, and its capabilities (not its name)
    keep it out of what can be deployed; the table says so."""
    assert "none" in backend_names() and "none" not in deployable_names()
    assert get_backend("none").capabilities.deploys is False
    rc, out, _ = run(capsys, "backends")
    assert rc == 0
    assert any(line.split()[0] == "none" and "does not deploy" in line
               for line in out.splitlines()[1:])
