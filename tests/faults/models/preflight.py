"""Generation 2 of the pre-flight and readiness-ownership tests.

The two webapps of ``examples/webapps`` with ``webapp`` changed (so a switch
that got past the pre-flight would stop it first), plus what
``settings.extra_params["problems"]`` (a list) asks for:

- ``executable``: ``misspelled`` runs ``/bin/sleeep``, which does not exist;
- ``port``: ``listener`` declares a TCP readiness check on ``foreign_port``,
  which a program outside the deployment holds;
- ``kept_port``: ``listener2`` declares the port of ``webapp1``, which the
  switch keeps running;
- ``squatter``: ``squatter`` (a python http.server of the model itself) takes
  ``squat_port`` when it starts, after the pre-flight; ``claimant`` depends
  on it, never listens itself, and declares a TCP check on that port, so
  only a readiness check that asks *who* listens can fail it.

``port_base`` moves the webapps' ports as in ``examples/webapps``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from procmgmt import Instance, Process, Settings
from procmgmt.readiness import TCP

WEBAPPS = Path(__file__).resolve().parents[3] / "examples" / "webapps"


def _constructors() -> ModuleType:
    spec = importlib.util.spec_from_file_location("preflight_webapps_constructors",
                                                  WEBAPPS / "constructors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sleeper(name: str, **kwargs: object) -> Process:
    return Process(name=name, instance_name=name, description=f"pre-flight test {name}",
                   foreground_process="/bin/sleep", foreground_process_args=["600"],
                   **kwargs)  # type: ignore[arg-type]


def processes(settings: Settings) -> dict[str, Instance]:
    params = settings.extra_params
    base = int(params["port_base"])
    problems = list(params.get("problems", []))
    webapp = _constructors().webapp(settings)
    first = webapp(port=base)
    changed = dataclasses.replace(
        first, environment={**first.environment, "FAULT_TEST_GENERATION": "2"})
    result = {
        "webapp": Instance(changed, port=base),
        "webapp1": Instance(webapp(port=base + 1, instance_suffix="1"), port=base + 1),
    }
    if "executable" in problems:
        result["misspelled"] = Instance(Process(
            name="misspelled", instance_name="misspelled", foreground_process="/bin/sleeep",
            foreground_process_args=["600"], dependencies=[changed]))
    if "port" in problems:
        port = int(params["foreign_port"])
        result["listener"] = Instance(_sleeper("listener", dependencies=[changed],
                                               readiness=TCP(port=port, timeout=2)))
    if "kept_port" in problems:
        result["listener2"] = Instance(_sleeper("listener2",
                                                readiness=TCP(port=base + 1, timeout=2)))
    if "squatter" in problems:
        port = int(params["squat_port"])
        squatter = Process(
            name="squatter", instance_name="squatter", description="holds a port",
            foreground_process=sys.executable,
            foreground_process_args=["-m", "http.server", str(port), "--bind", "127.0.0.1"],
            directory="/")
        result["squatter"] = Instance(squatter)
        result["claimant"] = Instance(_sleeper(
            "claimant", dependencies=[squatter, changed], readiness=TCP(port=port, timeout=3)))
    return result
