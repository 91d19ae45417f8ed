"""Cross-backend ordering matrix: each backend orders the advanced webapps, in its own terms.

The advanced example has webapp1 -> webapp2, webapp3 -> webapp4 and webapp5
-> webapp6. For every registered backend the generated files are parsed
back and the ordering they express is compared with the model's graph:

- sysvinit: ``S<NN>`` sequence numbers of the rcN.d links (and ``K<NN>``
  in reverse), LSB ``Should-Start``;
- supervisord: ``priority=``;
- systemd: ``After=`` (with a matching ``Wants=``);
- bsdrc: ``REQUIRE``, ordered by our rcorder (:mod:`procmgmt.backends.bsdrc.rcorder`);
- cygrunsrv: ``--dep`` in the service parameters;
- launchd: the proxy's waits for the dependencies' pid files (launchd itself
  has no dependencies), each pid file being one the dependency's job writes;
- runit: the same waits in the ``proxy`` that each service's ``run`` executes;
- s6: each ``run`` script's ``s6-svwait`` on the dependency's sibling service
  directory (``-U``, ready, only for one that has a ``notification-fd``);
- process-compose: ``depends_on`` (PyYAML), conditions matching the probes;
- kubernetes: each Deployment's ``wait-for-<dep>`` init containers, each
  connecting to the dependency's Service;
- s6-rc: ``dependencies.d/<dep>`` entries (s6-rc-compile's source format), each
  naming a longrun defined by another process.

Backends whose capabilities say their files carry no order (``none`` writes
specs; an ``Ordering.ENGINE`` backend leaves the order to the engine) are
not in the matrix.

Every dependency must come *strictly* before its dependent, and backends that
spell edges out must spell exactly the model's direct dependencies. A
registered backend without a checker here fails, so a new backend cannot
slip through unchecked.
"""

from __future__ import annotations

import configparser
import json
import plistlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from procmgmt.backends import backend_names, get_backend
from procmgmt.backends.base import File, Ordering
from procmgmt.backends.bsdrc.parse import parse_header
from procmgmt.backends.bsdrc.rcorder import dependency_graph, rcorder
from procmgmt.deploy.build import RenderResult, evaluate, render
from procmgmt.settings import Settings
from tests.conftest import EXAMPLES, golden_settings

ADVANCED = EXAMPLES / "webapps" / "processes-advanced.py"
#: The example's documented graph (dependent -> direct dependencies).
DOCUMENTED = {
    "webapp1": set(), "webapp2": {"webapp1"}, "webapp3": {"webapp1"},
    "webapp4": {"webapp2", "webapp3"}, "webapp5": set(), "webapp6": {"webapp5"},
}

Edges = set[tuple[str, str]]


@dataclass
class Evidence:
    """What a backend's files say about ordering."""

    #: (earlier, later): ``earlier`` is started strictly before ``later``.
    before: Edges
    #: (dependency, dependent) edges written out explicitly, or None when the
    #: backend only has numbers (supervisord priorities).
    declared: Edges | None


def closure(edges: Iterable[tuple[str, str]]) -> Edges:
    """Transitive closure of (earlier, later) pairs."""
    result = set(edges)
    while True:
        extra = {(a, d) for a, b in result for c, d in result if b == c} - result
        if not extra:
            return result
        result |= extra


def by_number(numbers: dict[str, int]) -> Edges:
    """Pairs ordered by strictly smaller number."""
    return {(a, b) for a in numbers for b in numbers if numbers[a] < numbers[b]}


def files_of(result: RenderResult) -> dict[str, dict[str, File]]:
    """process name -> path -> File."""
    return {r.spec.name: {f.path: f for f in r.files} for r in result.processes}


# --------------------------------------------------------------------------- checkers

_LINK = re.compile(r"^etc/rc\.d/rc(\d)\.d/([SK])(\d\d)(.+)$")


def check_sysvinit(result: RenderResult, settings: Settings) -> Evidence:
    """S numbers (equal in every runlevel), K numbers reversed, Should-Start edges."""
    start: dict[str, int] = {}
    kill: dict[str, int] = {}
    declared: Edges = set()
    for name, files in files_of(result).items():
        for path, f in files.items():
            m = _LINK.match(path)
            if m:
                assert m.group(4) == name and f.symlink == f"../init.d/{name}"
                table = start if m.group(2) == "S" else kill
                assert table.setdefault(name, int(m.group(3))) == int(m.group(3)), \
                    f"{name}: different sequence numbers in different runlevels"
        script = files[f"etc/rc.d/init.d/{name}"].content or ""
        header = re.search(r"^# Should-Start:(.*)$", script, re.MULTILINE)
        assert header, f"{name}: no Should-Start line"
        declared |= {(dep, name) for dep in header.group(1).split()}
    assert set(start) == set(kill) == set(files_of(result))
    for dep, name in declared:
        assert kill[name] < kill[dep], f"{name} must be killed before {dep}"
    return Evidence(by_number(start), declared)


def check_supervisord(result: RenderResult, settings: Settings) -> Evidence:
    """``priority=`` of each [program:x] section (supervisord starts low numbers first)."""
    priority: dict[str, int] = {}
    for name, files in files_of(result).items():
        parser = configparser.RawConfigParser(inline_comment_prefixes=None)
        parser.read_string(files[f"conf.d/{name}.conf"].content or "")
        priority[name] = parser.getint(f"program:{name}", "priority")
    return Evidence(by_number(priority), None)


def check_systemd(result: RenderResult, settings: Settings) -> Evidence:
    """``After=`` edges between the units, each with the same ``Wants=``."""
    unit_of: dict[str, str] = {}
    text_of: dict[str, str] = {}
    for name, files in files_of(result).items():
        (path,) = [p for p in files if p.endswith(".service")]
        unit_of[path.rsplit("/", 1)[1]] = name
        text_of[name] = files[path].content or ""
    declared: Edges = set()
    for name, text in text_of.items():
        after = re.findall(r"^After=(.+)$", text, re.MULTILINE)
        wants = re.findall(r"^Wants=(.+)$", text, re.MULTILINE)
        after_units = [u for line in after for u in line.split()]
        wants_units = [u for line in wants for u in line.split()]
        assert sorted(after_units) == sorted(wants_units), f"{name}: After= and Wants= differ"
        declared |= {(unit_of[u], name) for u in after_units}
    return Evidence(closure(declared), declared)


def check_bsdrc(result: RenderResult, settings: Settings) -> Evidence:
    """PROVIDE/REQUIRE headers, ordered by rcorder; no cycles."""
    scripts = []
    for name, files in files_of(result).items():
        text = files[f"etc/rc.d/{name}"].content or ""
        scripts.append(parse_header(text, f"etc/rc.d/{name}"))
    ordered = rcorder(scripts)
    assert not ordered.cycles, ordered.messages()
    names = [s.name for s in ordered.order]
    assert sorted(names) == sorted(files_of(result))
    graph = dependency_graph(scripts)
    declared = {(dep, name) for name, deps in graph.items() for dep in deps}
    return Evidence(by_number({n: i for i, n in enumerate(names)}), declared)


def check_cygrunsrv(result: RenderResult, settings: Settings) -> Evidence:
    """``--dep SERVICE`` in each service's parameters."""
    service_of: dict[str, str] = {}
    params_of: dict[str, list[str]] = {}
    for name, files in files_of(result).items():
        (f,) = [f for p, f in files.items() if p.endswith(".json")]
        data = json.loads(f.content or "")
        service_of[data["service"]] = name
        params_of[name] = list(data["params"])
    declared: Edges = set()
    for name, params in params_of.items():
        deps = [params[i + 1] for i, p in enumerate(params) if p == "--dep"]
        declared |= {(service_of[d], name) for d in deps}
    return Evidence(closure(declared), declared)


_WAIT = re.compile(r"^procmgmt_wait_for_dependency '([^']*)' '([^']*)'$", re.MULTILINE)


def check_launchd(result: RenderResult, settings: Settings) -> Evidence:
    """The proxy's ``procmgmt_wait_for_dependency NAME PID_FILE``; the dependency's job
    writes PID_FILE."""
    program: dict[str, str] = {}
    specs = {r.spec.name: r.spec for r in result.processes}
    for name, files in files_of(result).items():
        (f,) = [f for p, f in files.items() if p.endswith(".plist")]
        plist = plistlib.loads((f.content or "").encode())
        program[name] = "\n".join(plist.get("ProgramArguments", []))
    declared: Edges = set()
    for name, text in program.items():
        for dep, pid_file in _WAIT.findall(text):
            assert pid_file == specs[dep].derived_pid_file(settings), \
                f"{name} waits for {pid_file}, not {dep}'s pid file"
            assert pid_file in program[dep], f"{dep}'s job never writes {pid_file}"
            declared.add((dep, name))
    return Evidence(closure(declared), declared)


_PROXY_PID_FILE = re.compile(r"^procmgmt_proxy_pid_file='([^']*)'$", re.MULTILINE)


def check_runit(result: RenderResult, settings: Settings) -> Evidence:
    """``run`` executes ``./proxy`` (or, when the proxy only prepares, reads it in);
    the proxy waits (``procmgmt_wait_for_dependency
    NAME PID_FILE``) for pid files that the dependency's own proxy writes."""
    proxy: dict[str, str] = {}
    specs = {r.spec.name: r.spec for r in result.processes}
    for name, files in files_of(result).items():
        run = files["service/run"].content or ""
        last = run.rstrip().splitlines()[-1]
        assert last.endswith(" -- ./proxy") or last == ". ./proxy", f"{name}: run {run!r}"
        proxy[name] = files["service/proxy"].content or ""
    declared: Edges = set()
    for name, text in proxy.items():
        for dep, pid_file in _WAIT.findall(text):
            assert pid_file == specs[dep].derived_pid_file(settings), \
                f"{name} waits for {pid_file}, not {dep}'s pid file"
            assert _PROXY_PID_FILE.findall(proxy[dep]) == [pid_file], \
                f"{dep}'s proxy never writes {pid_file}"
            declared.add((dep, name))
    return Evidence(closure(declared), declared)


_SVWAIT = re.compile(r"^if ! s6-svwait (-[Uu]) -t \d+ '?\.\./([^' ]+)'?; then$", re.MULTILINE)


def check_s6(result: RenderResult, settings: Settings) -> Evidence:
    """``s6-svwait -U|-u ../DEP`` in ``run``: s6-supervise runs it in the service dir,
    so ``../DEP`` is the dependency's service directory in the same scan dir;
    ``-U`` (wait for readiness) only when the dependency notifies (it would never
    return otherwise)."""
    files = files_of(result)
    declared: Edges = set()
    for name, own in files.items():
        for flag, dep in _SVWAIT.findall(own[f"s6/{name}/run"].content or ""):
            assert f"s6/{dep}/run" in files.get(dep, {}), f"{name} waits for unknown {dep}"
            notifies = f"s6/{dep}/notification-fd" in files[dep]
            assert (flag == "-U") == notifies, f"{name} waits {flag} for {dep}"
            declared.add((dep, name))
    return Evidence(closure(declared), declared)


def check_s6rc(result: RenderResult, settings: Settings) -> Evidence:
    """``s6-rc/NAME/dependencies.d/DEP`` (an entry per direct dependency, its
    name the service's): s6-rc starts DEP before NAME, so DEP's definition
    directory must declare a longrun."""
    files = files_of(result)
    declared: Edges = set()
    for name, own in files.items():
        prefix = f"s6-rc/{name}/dependencies.d/"
        for path in own:
            if path.startswith(prefix):
                dep = path[len(prefix):]
                kind = files.get(dep, {}).get(f"s6-rc/{dep}/type")
                assert kind is not None and kind.content == "longrun\n", f"{name} -> {dep}"
                declared.add((dep, name))
    return Evidence(closure(declared), declared)


def _generation_yaml(result: RenderResult, name: str) -> list[Any]:
    """The documents of the generation file ``name``, read with PyYAML."""
    (f,) = [f for f in result.generation_files if f.path == name]
    return list(yaml.safe_load_all(f.content or ""))


def check_process_compose(result: RenderResult, settings: Settings) -> Evidence:
    """``depends_on: {DEP: {condition: ...}}`` in process-compose.yaml: process-compose
    starts DEP first; ``process_healthy`` (wait for the readiness probe) exactly when
    DEP has a ``readiness_probe``, else ``process_started``."""
    (data,) = _generation_yaml(result, "process-compose.yaml")
    processes = data["processes"]
    declared: Edges = set()
    for name, entry in processes.items():
        for dep, how in (entry.get("depends_on") or {}).items():
            assert dep in processes, f"{name} depends on unknown {dep}"
            healthy = "readiness_probe" in processes[dep]
            assert how["condition"] == ("process_healthy" if healthy else "process_started")
            declared.add((dep, name))
    return Evidence(closure(declared), declared)


_WAIT_TCP = re.compile(r"procmgmt_ready_tcp '?([a-z0-9-]+)'? (\d+)$", re.MULTILINE)


def check_kubernetes(result: RenderResult, settings: Settings) -> Evidence:
    """An init container ``wait-for-DEP`` per dependency, whose sh wait connects to
    DEP's Service (a Service named DEP exposing that port): the kubelet starts a
    pod's containers only after its init containers succeeded."""
    docs = _generation_yaml(result, "kubernetes.yaml")
    services = {d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]}
                for d in docs if d["kind"] == "Service"}
    declared: Edges = set()
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        name = d["metadata"]["name"]
        for init in d["spec"]["template"]["spec"].get("initContainers", []):
            dep = init["name"].removeprefix("wait-for-")
            ((host, port),) = _WAIT_TCP.findall(init["command"][2])
            assert host == dep and int(port) in services[dep], f"{name} waits for {host}"
            declared.add((dep, name))
    return Evidence(closure(declared), declared)


CHECKS: dict[str, Callable[[RenderResult, Settings], Evidence]] = {
    "sysvinit": check_sysvinit,
    "supervisord": check_supervisord,
    "systemd": check_systemd,
    "bsdrc": check_bsdrc,
    "cygrunsrv": check_cygrunsrv,
    "launchd": check_launchd,
    "runit": check_runit,
    "s6": check_s6,
    "s6-rc": check_s6rc,
    "process-compose": check_process_compose,
    "kubernetes": check_kubernetes,
}


def checker_for(backend: str) -> Callable[[RenderResult, Settings], Evidence]:
    """The backend's checker; failing (not skipping) when there is none."""
    check = CHECKS.get(backend)
    if check is None:
        pytest.fail(f"backend {backend!r} has no ordering check: add one to CHECKS in "
                    f"{__name__} that parses its generated files")
    return check


def assert_order(evidence: Evidence, graph: dict[str, set[str]]) -> None:
    """Each dependency strictly before its dependent; explicit edges are exactly the model's."""
    expected = {(dep, name) for name, deps in graph.items() for dep in deps}
    missing = sorted(e for e in expected if e not in evidence.before)
    assert not missing, f"not started strictly before their dependents: {missing}"
    assert not any(a == b for a, b in closure(evidence.before)), "ordering has a cycle"
    if evidence.declared is not None:
        assert evidence.declared == expected


def rendered(backend: str, privileged: bool) -> tuple[RenderResult, Settings, dict[str, set[str]]]:
    """The advanced example rendered for ``backend``, its settings and its dependency graph."""
    settings = golden_settings(privileged, backend)
    model, specs = evaluate(str(ADVANCED), settings)
    graph = {s.name: set(s.dependencies) for s in specs}
    return render(model, specs, settings, get_backend(backend)), settings, graph


# --------------------------------------------------------------------------- tests

#: Backends whose files carry a start order; for the others (``Ordering.ENGINE``,
#: ``Ordering.NONE``) the capability itself says there is nothing to parse.
ORDERED = [name for name in backend_names()
           if get_backend(name).capabilities.ordering not in (Ordering.ENGINE, Ordering.NONE)]


@pytest.mark.parametrize("privileged", [False, True], ids=["unprivileged", "privileged"])
@pytest.mark.parametrize("backend", ORDERED)
def test_dependencies_start_first(backend: str, privileged: bool) -> None:
    """The generated files order every dependency strictly before its dependent."""
    check = checker_for(backend)
    result, settings, graph = rendered(backend, privileged)
    assert graph == DOCUMENTED  # the example still has the shape this matrix is about
    assert_order(check(result, settings), graph)


@pytest.mark.parametrize("backend", sorted(CHECKS))
def test_checker_rejects_a_reversed_graph(backend: str) -> None:
    """Each checker can fail: against the reversed dependency graph it must."""
    if backend not in backend_names():
        pytest.skip(f"{backend} is not registered here")
    result, settings, graph = rendered(backend, False)
    reversed_graph: dict[str, set[str]] = {name: set() for name in graph}
    for name, deps in graph.items():
        for dep in deps:
            reversed_graph[dep].add(name)
    evidence = CHECKS[backend](result, settings)
    with pytest.raises(AssertionError):
        assert_order(evidence, reversed_graph)


def test_backend_without_checker_fails() -> None:
    """An unknown backend name fails the matrix instead of being skipped."""
    with pytest.raises(pytest.fail.Exception, match="has no ordering check"):
        checker_for("brand-new-manager")
