"""The s6-rc-compile source definition directories of a process, from its native model.

Each process is a pipeline of two longruns (s6-rc-compile.html, "Longrun
pipelining"): the process itself (``producer-for`` its logger) and an
``s6-log`` logger (``consumer-for`` the process, and, as the last consumer,
``pipeline-name``, which makes s6-rc-compile create a bundle of both). The
longrun's files are the s6 backend's service directory
(:func:`procmgmt.backends.s6.servicedir.render`: ``run``, ``data/start``,
``data/check``, ``notification-fd``, ``down-signal``, ``timeout-kill``)
without what s6-rc owns or ignores: no ``down`` file (s6-rc marks down
services itself), no ``log/`` (ignored in a definition directory), and no
dependency waits in ``run`` (s6-rc starts dependencies first). What is
s6-rc's own is added: ``type``, ``dependencies.d/``, ``timeout-up``,
``timeout-down`` and the pipeline files. The ``default`` bundle, a file of
the generation, contains every service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from procmgmt.backends.base import File
from procmgmt.backends.s6 import servicedir

#: Directory of the source definition directories in a store entry.
SOURCE_DIR = "s6-rc"
#: The bundle ``s6-rc -u change`` brings up: every service of the generation.
DEFAULT_BUNDLE = "default"
#: Suffixes of the logger longrun and of the pipeline bundle of a process.
LOGGER_SUFFIX = "-log"
PIPELINE_SUFFIX = "-pipeline"


def logger_name(name: str) -> str:
    """The s6-log longrun of process ``name``."""
    return name + LOGGER_SUFFIX


def pipeline_name(name: str) -> str:
    """The bundle s6-rc-compile creates for the pipeline of process ``name``."""
    return name + PIPELINE_SUFFIX


def service_names(name: str) -> tuple[str, str, str]:
    """Every s6-rc name process ``name`` takes: service, logger, pipeline bundle."""
    return name, logger_name(name), pipeline_name(name)


def _line(value: object) -> str:
    return f"{value}\n"


def render(name: str, native: Mapping[str, Any]) -> list[File]:
    """The definition directories of ``name`` and of its logger."""
    # The s6 service directory with what s6-rc does itself taken out.
    s6_native = {**native, "dependencies": {}, "down": False, "log": None}
    s6_base = servicedir.service_dir(name) + "/"
    base = f"{SOURCE_DIR}/{name}"
    files = [File(f"{base}/{f.path[len(s6_base):]}", f.content, f.mode)
             for f in servicedir.render(name, s6_native)]
    files += [File(f"{base}/type", "longrun\n"),
              File(f"{base}/timeout-up", _line(int(native["timeout_up"]))),
              File(f"{base}/timeout-down", _line(int(native["timeout_down"])))]
    files += [File(f"{base}/dependencies.d/{dep}", "") for dep in sorted(native["dependencies"])]
    log = native.get("log")
    if log:
        logger = logger_name(name)
        files.append(File(f"{base}/producer-for", _line(logger)))
        lbase = f"{SOURCE_DIR}/{logger}"
        files += [
            File(f"{lbase}/type", "longrun\n"),
            File(f"{lbase}/run", servicedir.log_run_script(
                name, str(log["dir"]), int(log.get("keep", 10)), int(log.get("size", 1000000))),
                mode=0o755),
            File(f"{lbase}/consumer-for", _line(name)),
            File(f"{lbase}/pipeline-name", _line(pipeline_name(name))),
        ]
    return sorted(files, key=lambda f: f.path)


def default_bundle(services: Iterable[str]) -> list[File]:
    """The ``default`` bundle: ``type`` and one ``contents.d`` entry per service."""
    base = f"{SOURCE_DIR}/{DEFAULT_BUNDLE}"
    return [File(f"{base}/type", "bundle\n"),
            *(File(f"{base}/contents.d/{s}", "") for s in sorted(services))]
