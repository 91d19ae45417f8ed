"""The network models without any host: infrastructure, distribution, per-target build
checks, the cross-host waves, the placement view and the bundle unpacking rules."""

from __future__ import annotations

import io
import tarfile
import textwrap
from pathlib import Path

import pytest

from procmgmt.cli.main import main
from procmgmt.errors import CycleError, UsageError, ValidationError
from procmgmt.model.loader import load_model
from procmgmt.network.agent import _unpack
from procmgmt.network.build import build_network
from procmgmt.network.distribution import load_distribution
from procmgmt.network.infrastructure import load_infrastructure
from procmgmt.network.placement import Placement, evaluating, placement
from procmgmt.network.waves import HostState, changes, start_waves, stop_waves
from procmgmt.settings import resolve

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "network"


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def infra_file(tmp_path: Path, *targets: str) -> str:
    body = ",\n        ".join(targets)
    return write(tmp_path / "infra.py", f"""\
        from procmgmt.network import SSH, Local, Target

        def infrastructure():
            return [
                {body}
            ]
        """)


def target(name: str, manager: str = "sysvinit", extra: str = "") -> str:
    return (f"Target({name!r}, SSH('127.0.0.2'), {manager!r}, '/tmp/{name}', "
            f"properties={{'address': '127.0.0.{2 + ord(name[0]) - ord('a')}'}}{extra})")


def test_infrastructure_problems_are_located(tmp_path: Path) -> None:
    path = infra_file(tmp_path, target("a"), target("a"), target("b", "nosuch"),
                      target("c", "supervisord", ", backends=('sysvinit',)"))
    with pytest.raises(ValidationError) as err:
        load_infrastructure(path)
    text = str(err.value)
    assert f"{path}:6  target a.name: a second target named 'a'" in text
    assert f"{path}:7  target b.process_manager: 'nosuch' is not a process manager" in text
    assert "target c.process_manager: the target has no supervisord (it has sysvinit)" in text


def test_infrastructure_must_return_targets(tmp_path: Path) -> None:
    path = write(tmp_path / "i.py", "def infrastructure():\n    return 42\n")
    with pytest.raises(ValidationError, match="must return a list of Target"):
        load_infrastructure(path)


def test_distribution_names_unknown_instances_and_targets(tmp_path: Path) -> None:
    infra = load_infrastructure(infra_file(tmp_path, target("a"), target("b")))
    model = load_model(str(EXAMPLE / "processes.py"), resolve({}))
    path = write(tmp_path / "d.py", """\
        def distribution(infrastructure, processes):
            return {"nginx": "zz", "nope": "a", "webapp1": [infrastructure["b"], "a"]}
        """)
    with pytest.raises(ValidationError) as err:
        load_distribution(path, infra, model)
    text = str(err.value)
    assert "nginx: 'zz' is not a target of the infrastructure (targets: a, b)" in text
    assert "nope: the processes model has no instance 'nope'" in text
    good = write(tmp_path / "g.py", """\
        def distribution(infrastructure, processes):
            return {"webapp1": [infrastructure["b"], "a"]}
        """)
    assert load_distribution(good, infra, model).placed == {"webapp1": ("b", "a")}


def build(tmp_path: Path, placed: dict[str, str], model: str | None = None,
          targets: tuple[str, ...] = ("a", "b")) -> object:
    infra = load_infrastructure(infra_file(tmp_path, *(target(t) for t in targets)))
    settings = resolve({"state_dir": str(tmp_path / "coord")})
    model_path = model or str(EXAMPLE / "processes.py")
    with evaluating(Placement()):
        loaded = load_model(model_path, settings)
    dist = load_distribution(write(tmp_path / "d.py", f"""\
        def distribution(infrastructure, processes):
            return {placed!r}
        """), infra, loaded)
    return build_network(model_path, infra, dist, settings, {}, str(tmp_path / "staging"))


def test_dependency_on_an_undistributed_instance_is_located(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as err:
        build(tmp_path, {"nginx": "a", "webapp1": "b"})
    source = (EXAMPLE / "processes.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if 'instances["nginx"]' in text)
    assert (f"{EXAMPLE / 'processes.py'}:{line}  nginx.dependencies: depends on instance "
            "'webapp2', which the distribution places on no target") in str(err.value)


def test_port_clash_on_one_host_is_located(tmp_path: Path) -> None:
    model = write(tmp_path / "m.py", """\
        from procmgmt import Instance, Process

        def processes(settings):
            return {
                "one": Instance(Process(name="one", foreground_process="/bin/true"), port=7000),
                "two": Instance(Process(name="two", foreground_process="/bin/true"), port=7000),
            }
        """)
    assert build(tmp_path, {"one": "a", "two": "b"}, model) is not None
    with pytest.raises(ValidationError) as err:
        build(tmp_path, {"one": "a", "two": "a"}, model)
    assert f"{model}:6  two.port: port 7000 is also used by 'one' on target a" in str(err.value)


def test_host_properties_reach_the_dependent_and_cross_edges(tmp_path: Path) -> None:
    built = build(tmp_path, {"nginx": "a", "webapp1": "b", "webapp2": "b"})
    nginx = built.targets["a"].generation.processes[0]  # type: ignore[attr-defined]
    conf = (Path(nginx.path) / "etc/rc.d/init.d/nginx").read_text()
    # nginx on a (127.0.0.2) reaches the webapps at b's address (127.0.0.3).
    assert "server 127.0.0.3:5001;" in conf and "server 127.0.0.3:5002;" in conf
    assert "listen 127.0.0.2:5080;" in conf
    assert built.depends[("a", "nginx")] == {  # type: ignore[attr-defined]
        ("b", "webapp1"), ("b", "webapp2")}
    assert [p.name for p in built.targets["a"].generation.processes] == [  # type: ignore
        "nginx"]


def test_waves_order_across_hosts() -> None:
    depends = {("a", "nginx"): {("b", "web1"), ("c", "web2")}, ("b", "web1"): set(),
               ("c", "web2"): set()}
    nodes = set(depends)
    assert stop_waves(nodes, depends) == [{("a", "nginx")}, {("b", "web1"), ("c", "web2")}]
    assert start_waves(nodes, depends) == [{("b", "web1"), ("c", "web2")}, {("a", "nginx")}]
    # A host's own dependencies count too: nginx (a) needs web1 (b), which needs db (b).
    mixed = {**depends, ("b", "web1"): {("b", "db")}, ("b", "db"): set()}
    assert stop_waves(set(mixed), mixed) == [{("a", "nginx")}, {("b", "web1"), ("c", "web2")},
                                             {("b", "db")}]
    with pytest.raises(CycleError):
        start_waves({("a", "x"), ("b", "y")}, {("a", "x"): {("b", "y")},
                                               ("b", "y"): {("a", "x")}})


def test_changes_by_hash_and_backend() -> None:
    old = HostState("sysvinit", {"web": "h1", "db": "h2"})
    assert changes(old, HostState("sysvinit", {"web": "h3", "db": "h2"})) == ({"web"}, {"web"})
    assert changes(old, HostState("supervisord", {"db": "h2"})) == ({"web", "db"}, {"db"})
    assert changes(old, HostState(None)) == ({"web", "db"}, set())


def test_placement_outside_a_network_deployment_is_local() -> None:
    assert placement().address("anything") == "127.0.0.1"
    with evaluating(Placement("a", {"web": {"address": "10.0.0.1", "target": "b"}})):
        assert placement().address("web") == "10.0.0.1"
        assert not placement().here("web")
    assert placement().target is None


def _tar(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> str:
    path = tmp_path / "bundle.tar"
    with tarfile.open(path, "w") as tar:
        tar.addfile(member, io.BytesIO(data) if data else None)
    return str(path)


@pytest.mark.parametrize("name,link", [("../evil", None), ("/etc/evil", None),
                                       ("entries/x-e/link", "../../y-other/file"),
                                       ("entries/x-e/link", "/etc/passwd")])
def test_bundle_members_must_stay_inside(tmp_path: Path, name: str, link: str | None) -> None:
    member = tarfile.TarInfo(name)
    if link:
        member.type, member.linkname = tarfile.SYMTYPE, link
    bundle = _tar(tmp_path, member)
    with pytest.raises(UsageError, match="unexpected member"):
        _unpack(bundle, str(tmp_path / "out"))


def test_network_command_usage_errors(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["network", "switch", "a.py", "b.py", *state]) == 2
    assert "give INFRA DIST MODEL" in capsys.readouterr().err
    assert main(["network", "status", "--dry-run", *state]) == 2
    assert "takes no FILE and no switch options" in capsys.readouterr().err
    assert main(["network", "switch", "--rollback", *state]) == 2
    assert "no network generation before" in capsys.readouterr().err
    assert main(["network", "status", *state]) == 2
    assert "nothing is deployed" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["network", "switch", "--dry-run", "i.py", "d.py", "m.py", "--state-dir", "S"],
    ["network", "switch", "i.py", "--dry-run", "d.py", "--state-dir", "S", "m.py"],
    ["network", "--state-dir", "S", "switch", "i.py", "d.py", "m.py", "--dry-run"],
    ["network", "--dry-run", "switch", "i.py", "d.py", "m.py", "--state-dir=S"],
])
def test_network_switch_options_go_anywhere(argv: list[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Options between the action word and the files (or among the files) are taken as
    options, the words as the files, in their order."""
    from procmgmt.network import transition

    calls: list[tuple[tuple[str, ...], bool, str]] = []

    def switch(self: transition.Network, *files: str, dry_run: bool = False
               ) -> transition.Outcome:
        calls.append((files, dry_run, self.settings.state_dir))
        return transition.Outcome()

    monkeypatch.setattr(transition.Network, "switch", switch)
    state = str(tmp_path / "state")
    assert main([state if a == "S" else a.replace("=S", f"={state}") for a in argv]) == 0
    assert calls == [(("i.py", "d.py", "m.py"), True, state)]


def test_an_unknown_option_among_the_files_is_still_refused(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["network", "switch", "i.py", "--dyr-run", "d.py", "m.py",
              "--state-dir", str(tmp_path)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --dyr-run" in err and "did you mean '--dry-run'" in err


def test_wheelhouse_carries_procmgmt_and_its_requirements(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wheels a target without procmgmt installs from: this procmgmt (every file of
    the package, whatever the install here) and supervisor, each RECORD line true. The
    source tree first on sys.path (its procmgmt.egg-info lists sources, not what is
    installed) changes nothing."""
    import base64
    import hashlib
    import zipfile

    import procmgmt
    from procmgmt.network.wheels import wheelhouse

    monkeypatch.syspath_prepend(str(Path(procmgmt.__file__).parents[1]))
    wheels = wheelhouse(str(tmp_path))
    assert sorted(Path(w).name.split("-")[0] for w in wheels) == ["procmgmt", "supervisor"]
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            [record] = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
            for line in zf.read(record).decode().splitlines():
                name, digest, size = line.rsplit(",", 2)
                if name == record:
                    continue
                data = zf.read(name)
                assert size == str(len(data))
                assert digest == "sha256=" + base64.urlsafe_b64encode(
                    hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if Path(wheel).name.startswith("procmgmt-"):
                package = Path(procmgmt.__file__).parent
                expected = {f"procmgmt/{p.relative_to(package)}" for p in package.rglob("*")
                            if p.is_file() and "__pycache__" not in p.parts}
                assert not expected - set(zf.namelist())


def test_a_compiled_requirement_cannot_be_carried(tmp_path: Path) -> None:
    from procmgmt.network.wheels import pack

    pytest.importorskip("gevent")  # compiled; the coordinator's own dependency
    with pytest.raises(UsageError, match=r"gevent .* not pure Python.*install_from"):
        pack("gevent", str(tmp_path))
