"""Generation 2 of the interrupt tests: a switch that is slow to finish and slow to undo.

The two webapps, ``webapp`` changed (so the switch stops and restarts it), plus:

- ``slowexit``: starts at once, but takes 2 s to exit after SIGTERM (each
  SIGTERM is logged to ``stamp_dir/slowexit.term``), so undoing the switch
  takes a while;
- ``sleeper``: never becomes ready (TCP on ``probe_port``, where nothing
  listens) within its 60-s readiness timeout, so the switch is still waiting
  for it when the test sends its signal.

``settings.extra_params``: ``port_base``, ``probe_port``, ``stamp_dir``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from procmgmt import Instance, Process, Settings
from procmgmt.readiness import TCP

WEBAPPS = Path(__file__).resolve().parents[3] / "examples" / "webapps"


def processes(settings: Settings) -> dict[str, Instance]:
    spec = importlib.util.spec_from_file_location("faults_slow_constructors",
                                                  WEBAPPS / "constructors.py")
    assert spec is not None and spec.loader is not None
    constructors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(constructors)
    params = settings.extra_params
    base = int(params["port_base"])
    stamp_dir = str(params["stamp_dir"])
    webapp = constructors.webapp(settings)
    first = webapp(port=base)
    changed = dataclasses.replace(
        first, environment={**first.environment, "FAULT_TEST_GENERATION": "2"})
    script = ("trap 'echo TERM >> \"$STAMP/slowexit.term\"; sleep 2; exit 0' TERM; "
              "while :; do sleep 0.2; done")
    slowexit = Process(name="slowexit", foreground_process="/bin/sh",
                       foreground_process_args=["-c", script], environment={"STAMP": stamp_dir},
                       dependencies=[changed],
                       overrides={"sysvinit": {"stop_timeout": 10},
                                  "supervisord": {"stopwaitsecs": 10}})
    sleeper = Process(name="sleeper", foreground_process="/bin/sleep",
                      foreground_process_args=["600"], dependencies=[changed],
                      readiness=TCP(port=int(params["probe_port"]), timeout=60.0))
    return {
        "webapp": Instance(changed, port=base),
        "webapp1": Instance(webapp(port=base + 1, instance_suffix="1"), port=base + 1),
        "slowexit": Instance(slowexit),
        "sleeper": Instance(sleeper),
    }
