"""switch --assign-ids: a new instance gets a free port, the others keep port and PID."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.util import REPO, Runner, free_port_block, kill_leftovers, wait_http

MODEL = """
import sys
sys.path.insert(0, {webapps!r})
from constructors import webapp
from procmgmt import Instance
from procmgmt.ids import lookup


def processes(settings):
    make = webapp(settings)
    out = {{}}
    for name in settings.extra_params["names"]:
        port = lookup(settings, "webapp_ports", name)
        out[name] = Instance(make(port=port, instance_name=name),
                             requires_unique_ids_for=["webapp_ports"], port=port)
    return out
"""


def pids(run: Runner) -> dict[str, int]:
    """name -> pid of the current generation."""
    return {p["name"]: p["pid"] for p in json.loads(run("status", "--json").stdout)["processes"]}


@pytest.mark.e2e
@pytest.mark.parametrize("backend", ["sysvinit", "supervisord"])
def test_assign_ids_adds_a_port_and_keeps_the_rest(backend: str, tmp_path: Path) -> None:
    """Adding an instance assigns it the next free port; nothing else changes or restarts."""
    base = free_port_block(8)
    model = tmp_path / "processes.py"
    model.write_text(MODEL.format(webapps=str(REPO / "examples" / "webapps")))
    resources = tmp_path / "idresources.json"
    resources.write_text(json.dumps({"webapp_ports": {"min": base, "max": base + 7}}))
    ids = tmp_path / "ids.json"
    state = tmp_path / "state"

    def runner(names: list[str]) -> Runner:
        return Runner(state, backend, json.dumps({"names": names}), cwd=tmp_path)

    run = runner(["webapp1", "webapp2"])
    try:
        # Without assigned IDs the build names the missing ones.
        out = run("build", model, check=False)
        assert out.returncode == 2 and "requires an ID from 'webapp_ports'" in out.stderr
        assert "no --ids file was given" in out.stderr

        run("switch", "--assign-ids", "--id-resources", resources, "--ids", ids, model)
        assigned = json.loads(ids.read_text())["ids"]["webapp_ports"]
        assert assigned == {"webapp1": base, "webapp2": base + 1}
        for port in assigned.values():
            assert f"listening on port: {port}" in wait_http(port)
        before = pids(run)

        run = runner(["webapp1", "webapp2", "webapp3"])
        out = run("switch", "--assign-ids", "--id-resources", resources, "--ids", ids, model)
        assigned = json.loads(ids.read_text())["ids"]["webapp_ports"]
        assert assigned == {"webapp1": base, "webapp2": base + 1, "webapp3": base + 2}
        assert "starting webapp3" in out.stdout
        assert "starting webapp1" not in out.stdout and "starting webapp2" not in out.stdout
        assert f"listening on port: {base + 2}" in wait_http(base + 2)
        after = pids(run)
        assert after["webapp1"] == before["webapp1"] and after["webapp2"] == before["webapp2"]
    finally:
        run("switch", "--undeploy", check=False)
        kill_leftovers(str(state))
