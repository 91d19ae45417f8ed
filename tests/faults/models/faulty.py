"""Generation 2 of the failed-switch tests: the two webapps, ``webapp`` changed, plus a fault.

Changing ``webapp`` (one more environment variable) makes the switch stop
and restart it, so a rollback has to stop the new version *and* start the
old one again. Every fault process depends on the new ``webapp``, so the
failure happens after it was restarted.

``settings.extra_params``:

- ``port_base``: the webapps' ports, as in ``examples/webapps``;
- ``fault``: which fault the generation adds:

  - ``exit``: ``crasher`` exits at once with a message on stderr;
  - ``never_ready``: ``sleeper`` runs but its readiness check (TCP on
    ``probe_port``, where nothing listens) times out after 1 s;
  - ``stubborn``: ``stubborn`` ignores SIGTERM (and says so in
    ``stamp_dir/stubborn.term``); ``crasher`` depends on it and fails, so
    ``stubborn`` is started and must be removed again: its stop must SIGKILL
    it after its stop timeout (1 s, a native override per backend);
  - ``dependency``: ``base`` exits at once; ``dependent`` depends on it and
    would leave ``stamp_dir/dependent.started`` if it were ever started;

- ``probe_port``: a free port nobody listens on;
- ``stamp_dir``: where the fault processes leave evidence.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path
from types import ModuleType

from procmgmt import Instance, Process, Settings
from procmgmt.readiness import TCP

WEBAPPS = Path(__file__).resolve().parents[3] / "examples" / "webapps"


def _constructors() -> ModuleType:
    """examples/webapps/constructors.py under a private module name (never 'constructors',
    which another model loaded in the same interpreter may mean differently)."""
    spec = importlib.util.spec_from_file_location("faults_webapps_constructors",
                                                  WEBAPPS / "constructors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sh(name: str, script: str, stamp_dir: str, **kwargs: object) -> Process:
    """A foreground ``/bin/sh -c SCRIPT`` process (STAMP points at the stamp dir)."""
    return Process(name=name, instance_name=name, description=f"fault test {name}",
                   foreground_process="/bin/sh", foreground_process_args=["-c", script],
                   environment={"STAMP": stamp_dir}, **kwargs)  # type: ignore[arg-type]


def processes(settings: Settings) -> dict[str, Instance]:
    params = settings.extra_params
    base = int(params["port_base"])
    fault = str(params["fault"])
    stamp_dir = str(params.get("stamp_dir", os.path.join(settings.state_dir, "stamps")))
    webapp = _constructors().webapp(settings)
    first = webapp(port=base)
    changed = dataclasses.replace(
        first, environment={**first.environment, "FAULT_TEST_GENERATION": "2"})
    result = {
        "webapp": Instance(changed, port=base),
        "webapp1": Instance(webapp(port=base + 1, instance_suffix="1"), port=base + 1),
    }
    crash = "echo \"$0: cannot start: configuration missing\" >&2; exit 3"
    if fault == "exit":
        result["crasher"] = Instance(_sh("crasher", crash, stamp_dir, dependencies=[changed]))
    elif fault == "never_ready":
        check = TCP(port=int(params["probe_port"]), timeout=1.0)
        result["sleeper"] = Instance(_sh("sleeper", "exec sleep 600", stamp_dir,
                                         dependencies=[changed], readiness=check))
    elif fault == "stubborn":
        # The trap records every SIGTERM and keeps going: only SIGKILL ends it.
        script = ("trap 'echo TERM >> \"$STAMP/stubborn.term\"' TERM; "
                  "while :; do sleep 1; done")
        stubborn = _sh("stubborn", script, stamp_dir, dependencies=[changed],
                       overrides={"sysvinit": {"stop_timeout": 1},
                                  "supervisord": {"stopwaitsecs": 1}})
        result["stubborn"] = Instance(stubborn)
        result["crasher"] = Instance(_sh("crasher", crash, stamp_dir, dependencies=[stubborn]))
    elif fault == "dependency":
        failing = _sh("base", crash, stamp_dir, dependencies=[changed])
        result["base"] = Instance(failing)
        result["dependent"] = Instance(_sh(
            "dependent", "touch \"$STAMP/dependent.started\"; exec sleep 600", stamp_dir,
            dependencies=[failing]))
    else:
        raise ValueError(f"unknown fault {fault!r}")
    return result
