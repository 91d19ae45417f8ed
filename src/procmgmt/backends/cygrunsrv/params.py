"""The params of a cygrunsrv service: the arguments that follow ``cygrunsrv --install NAME``.

**The params file** is JSON, not the original's one-argument-per-line text:
``{"service": NAME, "params": [ARG, ...]}``, where ``params`` are exactly the
arguments that follow ``cygrunsrv --install NAME``. One argument per line
cannot hold an argument with a line break (an environment value, a path),
JSON holds anything. The only placeholder is ``@ENTRY@``: the directory the
files were generated into (the store entry). It appears only in the proxy's
``--path``, because the store path is a hash of the very files that would
have to contain it; the activator substitutes it, and users of ``procmgmt
generate`` replace it with the directory they install the files to.

Params, in this order: ``--path`` (the program, or the proxy), ``--args``,
``--chdir``, ``--disp``, ``--desc``, ``--type`` (``auto``/``manual``), one
``--env NAME=VALUE`` per variable (sorted), one ``--dep <service>`` per
dependency (the Windows service control manager starts them first and
refuses to stop a service others need), ``--termsig`` (only when not TERM,
cygrunsrv's default), ``--stdout``/``--stderr`` (the log file; cygrunsrv's
default is /var/log/<service>.log) and ``--shutdown`` (stop the service at
system shutdown).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from procmgmt.backends.cygrunsrv.args import join_args

DEFAULT_PREFIX = "procmgmt-"
#: Replaced by the store entry's path when the service is installed.
ENTRY = "@ENTRY@"
DEFAULT_TERMSIG = "TERM"
_SIGNAL = re.compile(r"^(?:[A-Z][A-Z0-9]*|[0-9]+)$")


def service_name(name: str, prefix: str) -> str:
    """The Windows service name of process ``name``."""
    return f"{prefix}{name}"


def params_file(service: str) -> str:
    """Where the params live in the store entry."""
    return f"cygrunsrv/{service}.json"


def render_params(native: Mapping[str, Any]) -> list[str]:
    """The arguments after ``cygrunsrv --install NAME``, from a native model."""
    def text(key: str) -> str:
        value = native[key]
        if not isinstance(value, str):
            raise ValueError(f"cygrunsrv {key} must be a string, not {type(value).__name__}")
        if "\0" in value:
            raise ValueError(f"cygrunsrv {key} contains a NUL character")
        return value

    params = ["--path", text("path")]
    args = native.get("args") or []
    if args:
        params += ["--args", join_args([str(a) for a in args])]
    for key in ("chdir", "disp", "desc"):
        if native.get(key):
            params += [f"--{key}", text(key)]
    if native.get("type"):
        kind = text("type")
        if kind not in ("auto", "manual"):
            raise ValueError(f"cygrunsrv type must be 'auto' or 'manual', not {kind!r}")
        params += ["--type", kind]
    env = native.get("env") or {}
    for key in sorted(env):
        value = str(env[key])
        if not key or "=" in key or "\0" in key + value:
            raise ValueError(f"cygrunsrv cannot set environment variable {key!r}")
        params += ["--env", f"{key}={value}"]
    for dep in native.get("deps") or []:
        params += ["--dep", str(dep)]
    termsig = native.get("termsig")
    if termsig and termsig != DEFAULT_TERMSIG:
        if not _SIGNAL.match(str(termsig)):
            raise ValueError(f"cygrunsrv termsig {termsig!r} is not a signal name or number")
        params += ["--termsig", str(termsig)]
    for key in ("stdin", "stdout", "stderr", "pidfile"):
        if native.get(key):
            params += [f"--{key}", text(key)]
    for flag in ("shutdown", "neverexits"):
        if native.get(flag):
            params.append(f"--{flag}")
    return params
