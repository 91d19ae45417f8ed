"""The plan file of a container (``docker/<name>.json``) and its ``docker create``
options, from the backend's native model.

Pure: the same native model always gives the same argument list, which is
what the golden files show. The activator adds what only activation knows
(the hash label, the user's numeric ids, the proxy's mount from the store
entry) and runs
``docker -H unix://SOCKET create OPTIONS IMAGE COMMAND``; the plan's
``runc`` part (:func:`.oci.runc_block`) is what runc gets instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt.manifest import DeployedProcess

#: Labels every container carries (the activator adds :data:`HASH_LABEL`).
DEPLOYMENT_LABEL = "procmgmt.deployment"
PROCESS_LABEL = "procmgmt.process"
#: The content hash of the process's rendered files: a container whose label
#: differs belongs to another generation's version of the process.
HASH_LABEL = "procmgmt.hash"


def mount_option(mount: Mapping[str, Any]) -> str:
    """``--mount`` value of a bind mount. Fields are comma-separated and a value
    with a comma or a quote must be CSV-quoted (docker reads the value as one CSV
    record); paths are checked by validation to need neither."""
    value = f"type=bind,source={mount['source']},target={mount['target']}"
    if mount.get("readonly"):
        value += ",readonly"
    return value


def restart_option(policy: str, max_retries: int | None) -> str:
    """``--restart`` value: ``no``, ``always``, ``on-failure[:N]``."""
    if policy == "on-failure" and max_retries is not None:
        return f"on-failure:{max_retries}"
    return policy


def create_options(native: Mapping[str, Any]) -> list[str]:
    """The options of ``docker create`` (before the image), in a fixed order."""
    opts = ["--name", str(native["container"])]
    for key, value in sorted((native.get("labels") or {}).items()):
        opts += ["--label", f"{key}={value}"]
    opts += ["--network", str(native.get("network", "host")),
             "--pid", str(native.get("pid", "host"))]
    if native.get("workdir"):
        opts += ["--workdir", str(native["workdir"])]
    # Sorted: the model's dict order is not kept by its JSON specs (late translation).
    for key, value in sorted((native.get("environment") or {}).items()):
        opts += ["--env", f"{key}={value}"]
    for mount in native.get("mounts") or []:
        opts += ["--mount", mount_option(mount)]
    for key, value in sorted((native.get("log_options") or {}).items()):
        opts += ["--log-opt", f"{key}={value}"]
    opts += ["--restart", restart_option(str(native.get("restart", "no")),
                                         native.get("restart_max"))]
    opts += ["--stop-signal", str(native.get("stop_signal", "TERM")),
             "--stop-timeout", str(native.get("stop_timeout", 10))]
    for extra in native.get("extra_options") or []:
        opts.append(str(extra))
    return opts


def command(native: Mapping[str, Any]) -> Sequence[str]:
    """The container's command (``--entrypoint`` is never used: the image has none)."""
    return [str(w) for w in native.get("command") or []]


def load(proc: DeployedProcess) -> dict[str, Any]:
    """The process's plan file from its store entry."""
    path = os.path.join(proc.path, str(proc.extra.get("plan") or f"docker/{proc.name}.json"))
    with open(path, encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


def container(proc: DeployedProcess) -> str:
    """The container name the build recorded."""
    return str(proc.extra["container"])


def proxy_path(proc: DeployedProcess, doc: Mapping[str, Any]) -> str | None:
    """The proxy's absolute path in the store entry (mounted read-only at the same
    place and run as the container's command), None when the process needs none."""
    return os.path.join(proc.path, str(doc["proxy"])) if doc.get("proxy") else None
