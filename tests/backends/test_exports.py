"""The exports (process-compose, kubernetes): read back, checked against their
documented structure, and validated by a real tool where one exists here.

* kubernetes: ``kubernetes-validate --strict`` (a test dependency carrying
  Kubernetes' published JSON schemas; strict refuses unknown fields), for
  every golden case in both modes.
* process-compose: the binary is published only as a GitHub release (not in
  Debian or PyPI), so the document is read back with PyYAML and checked
  against the structure below, written from process-compose's configuration
  reference (https://f1bonacc1.github.io/process-compose/launcher/,
  https://f1bonacc1.github.io/process-compose/health/,
  https://f1bonacc1.github.io/process-compose/configuration/) and its Go types
  (src/types/process.go, src/health/probe.go of github.com/F1bonacc1/process-compose,
  whose loader refuses unknown process keys other than ``x-*``).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from procmgmt.backends import get_backend
from procmgmt.backends.shared import yamlout
from procmgmt.cli.main import main
from procmgmt.deploy.build import evaluate, render
from procmgmt.errors import UsageError, ValidationError
from procmgmt.model.loader import Model
from procmgmt.model.process import Instance, Process
from procmgmt.readiness import HTTP, TCP, Command, LogLine, Notify, PidFile
from procmgmt.validate import validate
from tests.conftest import golden_settings
from tests.golden.test_golden import CASES

# --------------------------------------------------------------------------- process-compose

#: Keys of a process entry and their YAML types (ProcessConfig of src/types/process.go;
#: only those procmgmt may write are allowed here, so a typo fails).
PROCESS_KEYS: dict[str, type | tuple[type, ...]] = {
    "description": str, "entrypoint": list, "working_dir": str, "environment": list,
    "depends_on": dict, "readiness_probe": dict, "liveness_probe": dict,
    "availability": dict, "shutdown": dict, "log_location": str, "namespace": str,
    "is_daemon": bool, "command": str,
}
#: ``depends_on.<name>.condition`` (launcher.md, "Define process dependencies").
CONDITIONS = {"process_completed", "process_completed_successfully", "process_healthy",
              "process_started", "process_log_ready"}
#: ``availability`` (launcher.md, "Auto Restart on Exit").
AVAILABILITY: dict[str, type] = {"restart": str, "backoff_seconds": int, "max_restarts": int,
                                 "exit_on_end": bool}
RESTARTS = {"always", "on_failure", "exit_on_failure", "no"}
#: ``shutdown`` (launcher.md, "Termination Parameters"): signal 1..31.
SHUTDOWN: dict[str, type] = {"command": str, "signal": int, "timeout_seconds": int,
                             "parent_only": bool}
#: A probe (health.md; src/health/probe.go): exactly one of exec and http_get.
PROBE: dict[str, type] = {"exec": dict, "http_get": dict, "initial_delay_seconds": int,
                          "period_seconds": int, "timeout_seconds": int,
                          "success_threshold": int, "failure_threshold": int}
EXEC: dict[str, type] = {"command": str, "working_dir": str}
#: ``port`` is a string (it is rendered as a template), ``status_code`` 1..399.
HTTP_GET: dict[str, type] = {"host": str, "path": str, "scheme": str, "port": str,
                             "headers": dict, "status_code": int}


def _typed(where: str, data: Any, keys: dict[str, Any]) -> list[str]:
    if not isinstance(data, dict):
        return [f"{where}: not a mapping"]
    problems = [f"{where}.{k}: unknown key" for k in data if k not in keys]
    problems += [f"{where}.{k}: {type(v).__name__}, not {keys[k]}" for k, v in data.items()
                 if k in keys and (not isinstance(v, keys[k]) or
                                   (keys[k] is int and isinstance(v, bool)))]
    return problems


def _probe_problems(where: str, probe: Any) -> list[str]:
    problems = _typed(where, probe, PROBE)
    if not isinstance(probe, dict):
        return problems
    kinds = [k for k in ("exec", "http_get") if k in probe]
    if len(kinds) != 1:
        problems.append(f"{where}: exactly one of exec and http_get, got {kinds}")
    if "exec" in probe:
        problems += _typed(f"{where}.exec", probe["exec"], EXEC)
    if "http_get" in probe:
        get = probe["http_get"]
        problems += _typed(f"{where}.http_get", get, HTTP_GET)
        if isinstance(get, dict):
            if not str(get.get("port", "")).isdigit() or not 0 < int(get["port"]) < 65536:
                problems.append(f"{where}.http_get.port: {get.get('port')!r}")
            if not 0 < int(get.get("status_code", 200)) < 400:
                problems.append(f"{where}.http_get.status_code: taken as 200")
    for key in ("period_seconds", "timeout_seconds", "failure_threshold"):
        if isinstance(probe.get(key), int) and probe[key] < 1:
            problems.append(f"{where}.{key}: below 1 is replaced by the default")
    return problems


def process_compose_problems(data: Any) -> list[str]:
    """Everything in a parsed process-compose.yaml that the reference does not allow."""
    problems = _typed("", data, {"version": str, "processes": dict})
    processes = data.get("processes") if isinstance(data, dict) else None
    if not isinstance(processes, dict):
        return [*problems, "processes: missing (the one required key)"]
    for name, entry in processes.items():
        where = f"processes.{name}"
        problems += _typed(where, entry, PROCESS_KEYS)
        if not isinstance(entry, dict):
            continue
        argv = entry.get("entrypoint")
        if not (isinstance(argv, list) and argv and all(isinstance(w, str) for w in argv)):
            problems.append(f"{where}.entrypoint: a non-empty list of strings")
        for item in entry.get("environment", []):
            if not (isinstance(item, str) and "=" in item):
                problems.append(f"{where}.environment: {item!r} is not NAME=VALUE")
        for dep, how in (entry.get("depends_on") or {}).items():
            if dep not in processes:
                problems.append(f"{where}.depends_on.{dep}: no such process")
            if not isinstance(how, dict) or how.get("condition") not in CONDITIONS:
                problems.append(f"{where}.depends_on.{dep}: condition {how!r}")
        availability = entry.get("availability", {})
        problems += _typed(f"{where}.availability", availability, AVAILABILITY)
        if availability.get("restart", "no") not in RESTARTS:
            problems.append(f"{where}.availability.restart: {availability.get('restart')!r}")
        shutdown = entry.get("shutdown", {})
        problems += _typed(f"{where}.shutdown", shutdown, SHUTDOWN)
        if not 1 <= shutdown.get("signal", 15) <= 31:
            problems.append(f"{where}.shutdown.signal: {shutdown.get('signal')!r}")
        for key in ("readiness_probe", "liveness_probe"):
            if key in entry:
                problems += _probe_problems(f"{where}.{key}", entry[key])
    return problems


def rendered_document(backend: str, case: str, environ: dict[str, str] | None = None,
                      monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    """The one generation file of ``backend`` for golden case ``case``."""
    model_path, privileged, extra = CASES[case]
    settings = dataclasses.replace(golden_settings(privileged, backend), extra_params=extra)
    model, specs = evaluate(str(model_path), settings)
    result = render(model, specs, settings, get_backend(backend))
    assert all(not r.files for r in result.processes), "an export writes one document"
    (document,) = result.generation_files
    assert document.content is not None
    return document.content


@pytest.mark.parametrize("case", sorted(CASES))
def test_process_compose_document_follows_the_reference(case: str) -> None:
    data = yaml.safe_load(rendered_document("process-compose", case))
    assert process_compose_problems(data) == []
    assert data["processes"], case


def test_the_structure_check_can_fail() -> None:
    data = yaml.safe_load(rendered_document("process-compose", "webapps-advanced-unprivileged"))
    entry = data["processes"]["webapp2"]
    entry["depends_on"]["webapp1"]["condition"] = "process_ready"
    entry["availability"]["restart"] = "on-failure"
    entry["readiness_probe"]["http_get"] = {"port": "x"}
    entry["workdir"] = "/"
    found = process_compose_problems(data)
    assert any("condition" in p for p in found)
    assert any("availability.restart" in p for p in found)
    assert any("exactly one of exec and http_get" in p for p in found)
    assert any("workdir: unknown key" in p for p in found)


def one_process(name: str = "svc", **fields: Any) -> Model:
    """A model of one foreground process ``name`` with ``fields`` (Process keywords)."""
    proc = Process(name=name, foreground_process="/bin/sleep", args=["60"], **fields)
    return Model(file=__file__, instances={name: Instance(proc)})


def render_one(backend: str, model: Model, privileged: bool = False) -> tuple[str, list[str]]:
    """The generation document of ``model`` and the build warnings."""
    settings = golden_settings(privileged, backend)
    result = render(model, validate(model, settings), settings, get_backend(backend))
    return result.generation_files[0].content or "", result.warnings


def _entry(backend: str, proc: dict[str, Any], tmp: Path) -> tuple[dict[str, Any], list[str]]:
    """The parsed process-compose document of one process with ``proc``, after
    process-compose's ``$$`` substitution, checked against the reference."""
    text, warnings = render_one(backend, one_process(**proc))
    data = yaml.safe_load(text.replace("$$", "$"))
    assert process_compose_problems(data) == []
    return data, warnings


@pytest.mark.parametrize(("check", "kind"), [
    (TCP(port=8080), "exec"), (HTTP(url="http://127.0.0.1:81/health?x=1"), "http_get"),
    (HTTP(url="http://127.0.0.1/", status=503), "exec"), (Command(command="true"), "exec"),
    (PidFile(), "exec"), (LogLine(path="/srv/pm/log/x.log", pattern="ready"), "exec"),
])
def test_each_readiness_kind_is_a_probe(check: Any, kind: str, tmp_path: Path) -> None:
    data, _ = _entry("process-compose", {"readiness": check}, tmp_path)
    probe = data["processes"]["svc"]["readiness_probe"]
    assert kind in probe
    if kind == "http_get":
        assert probe["http_get"] == {"host": "127.0.0.1", "scheme": "http",
                                     "path": "/health?x=1", "port": "81", "status_code": 200}


def test_notify_is_a_warning_not_a_probe(tmp_path: Path) -> None:
    data, warnings = _entry("process-compose", {"readiness": Notify()}, tmp_path)
    assert "readiness_probe" not in data["processes"]["svc"]
    assert any("cannot be probed" in w for w in warnings)


def test_lifecycle_maps_to_availability_and_shutdown(tmp_path: Path) -> None:
    data, warnings = _entry("process-compose", {"restart": "on-failure", "restart_delay": 1.5,
                                                "restart_max": 4, "stop_timeout": 7,
                                                "stop_signal": "INT"}, tmp_path)
    entry = data["processes"]["svc"]
    assert entry["availability"] == {"restart": "on_failure", "backoff_seconds": 2,
                                     "max_restarts": 4}
    assert entry["shutdown"] == {"signal": 2, "timeout_seconds": 7}
    assert any("backoff_seconds: 2" in w for w in warnings)


def test_the_exec_probe_is_a_working_script(tmp_path: Path) -> None:
    """The exec probe runs the shared sh check once: not ready (exit 1, the reason
    on stderr), then ready (process-compose runs it with bash -c by default)."""
    flag = tmp_path / "up"
    data, _ = _entry("process-compose", {"readiness": Command(command=["test", "-e",
                                                                       str(flag)])}, tmp_path)
    script = data["processes"]["svc"]["readiness_probe"]["exec"]["command"]
    shell = shutil.which("bash") or "sh"

    def probe() -> subprocess.CompletedProcess[str]:
        return subprocess.run([shell, "-c", script], capture_output=True, text=True,
                              timeout=30, check=False)

    first = probe()
    assert first.returncode == 1 and "exit status 1" in first.stderr
    flag.touch()
    second = probe()
    assert second.returncode == 0, second.stderr


# --------------------------------------------------------------------------- kubernetes

def _validate_k8s(text: str, tmp_path: Path) -> None:
    path = tmp_path / "kubernetes.yaml"
    path.write_text(text)
    # The test dependency's console script, next to this interpreter (a venv's bin
    # directory need not be on PATH).
    tool = str(Path(sys.executable).parent / "kubernetes-validate")
    if not Path(tool).exists():
        tool = shutil.which("kubernetes-validate") or tool
    r = subprocess.run([tool, "--strict", "--quiet", str(path)], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("mode", ["deployment", "pod"])
def test_kubernetes_documents_pass_the_schemas(mode: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCMGMT_KUBERNETES_MODE", mode)
    texts = [rendered_document("kubernetes", case) for case in sorted(CASES)]
    for text in texts:
        docs = list(yaml.safe_load_all(text))
        kinds = {d["kind"] for d in docs}
        assert kinds - {"Service"} == ({"Deployment"} if mode == "deployment"
                                       else {"Pod"}), kinds
    _validate_k8s("".join(texts), tmp_path)


def test_the_kubernetes_validator_can_fail(tmp_path: Path) -> None:
    docs = list(yaml.safe_load_all(rendered_document("kubernetes", "webapps-unprivileged")))
    docs[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["tcpSocket"][
        "portt"] = 1
    with pytest.raises(AssertionError, match="portt"):
        _validate_k8s(yamlout.dump_all(docs), tmp_path)


def test_kubernetes_image_and_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCMGMT_KUBERNETES_IMAGE", "registry.example/app:1")
    monkeypatch.setenv("PROCMGMT_KUBERNETES_MODE", "pod")
    (pod, *services) = yaml.safe_load_all(
        rendered_document("kubernetes", "webapps-advanced-unprivileged"))
    containers = pod["spec"]["containers"]
    assert {c["image"] for c in containers} == {"registry.example/app:1"}
    assert [s["metadata"]["name"] for s in services] == [c["name"] for c in containers]
    # webapp2 waits for webapp1 on the loopback address, in its proxy.
    (webapp2,) = [c for c in containers if c["name"] == "webapp2"]
    assert webapp2["command"][:2] == ["/bin/sh", "-c"]
    assert re.search(r"procmgmt_ready_tcp '?127\.0\.0\.1'? 5001 ", webapp2["command"][2])


def test_kubernetes_run_as_user_from_the_ids(tmp_path: Path) -> None:
    from procmgmt.model.credentials import Credentials, User

    model = one_process(user="svc", credentials=Credentials(users={"svc": User(uid=1234)}))
    text, _ = render_one("kubernetes", model, privileged=True)
    (deployment,) = yaml.safe_load_all(text)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"] == {"runAsUser": 1234}


# --------------------------------------------------------------------------- errors

def test_a_bad_name_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as exc:
        render_one("kubernetes", one_process("Web_1"))
    text = str(exc.value)
    assert "kubernetes: 'Web_1' is not a Kubernetes object name" in text
    assert "test_exports.py" in text


def test_a_restart_policy_kubernetes_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="restart"):
        render_one("kubernetes", one_process(restart="no"))


def test_a_bad_mode_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCMGMT_KUBERNETES_MODE", "daemonset")
    with pytest.raises(UsageError, match="PROCMGMT_KUBERNETES_MODE: expected one of"):
        rendered_document("kubernetes", "webapps-unprivileged")


@pytest.mark.parametrize(("backend", "hint"), [
    ("process-compose", "process-compose -f OUT/process-compose.yaml up"),
    ("kubernetes", "kubectl apply -f OUT/kubernetes.yaml"),
])
def test_switch_says_how_to_run_an_export(backend: str, hint: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    model = Path(CASES["webapps-unprivileged"][0])
    rc = main(["switch", "-P", backend, "--state-dir", str(tmp_path / "state"),
               "--force-disable-user-change", str(model)])
    err = capsys.readouterr().err
    assert rc == 2 and hint in err and "Traceback" not in err


def test_generate_writes_the_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = Path(CASES["webapps-unprivileged"][0])
    out = tmp_path / "out"
    for _ in range(2):  # a second run replaces the file
        assert main(["generate", "-P", "process-compose", "--state-dir", str(tmp_path / "s"),
                     "--force-disable-user-change", str(model), "-o", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["process-compose.yaml"]
    assert "wrote 1 files for" in capsys.readouterr().out


def test_overrides_reach_the_document() -> None:
    """The document is assembled from each process's native model after its
    overrides (``BuildContext.natives``), as every backend's files are."""
    model = one_process(overrides={
        "process-compose": {"availability": {"restart": "exit_on_failure"}},
        "kubernetes": {"container": {"image": "registry.example/own:2"},
                       "labels": {"tier": "web"}}})
    text, _ = render_one("process-compose", model)
    assert yaml.safe_load(text)["processes"]["svc"]["availability"] == {
        "restart": "exit_on_failure"}
    text, _ = render_one("kubernetes", model)
    (deployment,) = yaml.safe_load_all(text)
    template = deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "registry.example/own:2"
    assert template["metadata"]["labels"]["tier"] == "web"


def test_a_log_pattern_the_exec_probe_cannot_check_is_located() -> None:
    with pytest.raises(ValidationError) as exc:
        render_one("process-compose", one_process(
            readiness=LogLine(path="/srv/pm/log/svc.log", pattern="(?<=a)b")))
    (problem,) = exc.value.problems
    assert problem.instance == "svc" and problem.field == "readiness.pattern"
    assert problem.file == __file__ and problem.message.startswith("process-compose: ")


def test_an_ipv6_http_check_is_an_exec_probe(tmp_path: Path) -> None:
    data, _ = _entry("process-compose", {"readiness": HTTP(url="http://[::1]:8080/")},
                     tmp_path)
    assert "exec" in data["processes"]["svc"]["readiness_probe"]
