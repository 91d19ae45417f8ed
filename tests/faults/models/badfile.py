"""Generation 2 of the rejected-program-file test: the two webapps, ``webapp`` changed,
plus ``bad``, whose supervisord program file names a user that does not exist.

The user comes as a native supervisord override, so no validation of procmgmt
judges it: the file reaches supervisord, which refuses to reread the program
files (CANT_REREAD). ``settings.extra_params["port_base"]`` as for the webapps.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

from procmgmt import Instance, Process, Settings

WEBAPPS = Path(__file__).resolve().parents[3] / "examples" / "webapps"


def processes(settings: Settings) -> dict[str, Instance]:
    spec = importlib.util.spec_from_file_location("faults_badfile_constructors",
                                                  WEBAPPS / "constructors.py")
    assert spec is not None and spec.loader is not None
    constructors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(constructors)
    base = int(settings.extra_params["port_base"])
    webapp = constructors.webapp(settings)
    first = webapp(port=base)
    changed = dataclasses.replace(
        first, environment={**first.environment, "FAULT_TEST_GENERATION": "2"})
    bad = Process(name="bad", foreground_process="/bin/sleep", foreground_process_args=["600"],
                  overrides={"supervisord": {"user": "procmgmt-no-such-user"}})
    return {
        "webapp": Instance(changed, port=base),
        "webapp1": Instance(webapp(port=base + 1, instance_suffix="1"), port=base + 1),
        "bad": Instance(bad),
    }
