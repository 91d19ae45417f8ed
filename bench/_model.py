"""Synthetic processes models for the benchmarks, written as real model files.

The generated file is an ordinary procmgmt model (``processes(settings)``), so
the benchmarks exercise the same loader, validation and build as a user's
model. Every process carries ``BENCH_TAG`` in its environment: that is how the
suite finds (and proves gone) every process it started.
"""

from __future__ import annotations

import json
from typing import Any

_TEMPLATE = '''"""Synthetic benchmark model: {n} processes ({shape})."""

from procmgmt import Instance, Process
{imports}
N = {n}
TAG = {tag!r}
COMMAND = {command!r}
SHAPE = {shape!r}
LEVELS = {levels}
CHANGED = {changed!r}
PORT_BASE = {port_base}


def processes(settings):
    procs = []
    instances = {{}}
    width = max(1, N // LEVELS)
    for i in range(N):
        name = f"p{{i:05d}}"
        deps = []
        if SHAPE == "some" and i % 10:
            deps = [procs[i - i % 10]]          # groups of ten: one root, nine dependents
        elif SHAPE == "levels" and i >= width:
            deps = [procs[(i // width - 1) * width + (i % width)]]
            if i % width:                        # and one more edge into the level above
                deps.append(procs[(i // width - 1) * width + (i % width) - 1])
        argv = [a.replace("@NAME@", name).replace("@PORT@", str(PORT_BASE + i)) for a in COMMAND]
        env = {{"BENCH_TAG": TAG}}
        if name in CHANGED:
            env["BENCH_CHANGED"] = "1"          # a changed environment: a changed process
        kw = {{}}
{readiness}
        p = Process(name=name, foreground_process=argv[0], foreground_process_args=argv[1:],
                    environment=env, dependencies=deps, **kw)
        procs.append(p)
        instances[name] = Instance(p, port=PORT_BASE + i if PORT_BASE else None)
    return instances
'''

SLEEP = ["/bin/sleep", "100000"]


def write_model(path: str, n: int, tag: str, *, command: list[str] | None = None,
                shape: str = "none", levels: int = 1, readiness: str | None = None,
                changed: tuple[str, ...] = (), port_base: int = 0,
                interval: float = 0.02) -> str:
    """Write a model of ``n`` processes to ``path``.

    ``shape``: "none" (independent), "some" (groups of ten: one root and nine
    dependents) or "levels" (``levels`` layers, each process depending on one
    or two of the layer above). ``readiness``: None, "tcp" (the instance's
    port accepts) or "log" (the process's log file gets a line ``ready``; the
    command prints it). ``changed``: names whose command differs (for an "update one" switch).
    """
    imports = ""
    block = ""
    if readiness == "tcp":
        imports = "from procmgmt.readiness import TCP\n"
        block = f"        kw['readiness'] = TCP(port=PORT_BASE + i, interval={interval})"
    elif readiness == "log":
        imports = "from procmgmt.readiness import LogLine\n"
        block = ("        kw['readiness'] = LogLine(path=os.path.join(settings.log_dir, "
                 f"name + '.log'), pattern='^ready$', interval={interval})")
    elif readiness is not None:
        raise ValueError(f"unknown readiness {readiness!r}")
    text = _TEMPLATE.format(n=n, tag=tag, command=command or SLEEP, shape=shape,
                            levels=max(1, levels), changed=tuple(changed),
                            port_base=port_base,
                            imports="import os\n" + imports, readiness=block or "        pass")
    with open(path, "w") as f:
        f.write(text)
    return path


def settings_for(state_dir: str, backend: str, **extra: Any) -> Any:
    """Settings of a private, unprivileged deployment in ``state_dir``."""
    from procmgmt.settings import resolve

    cli: dict[str, Any] = {"state_dir": state_dir, "process_manager": backend,
                           "force_disable_user_change": True,
                           "extra_params": json.dumps(extra)}
    return resolve(cli, {})


__all__ = ["SLEEP", "settings_for", "write_model"]
