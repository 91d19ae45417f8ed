"""Inspection commands: ``analyze critical-chain`` and ``graph``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any, Protocol

from procmgmt.cli.common import Subcommands, fmt_time, model_path
from procmgmt.deploy.build import evaluate
from procmgmt.deploy.engine import Engine
from procmgmt.errors import UsageError
from procmgmt.settings import Settings


def _cfg_analyze(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["critical-chain"],
                   help="critical-chain: when each process of the last switch started and "
                        "became ready, and which chain bounded the total")


def critical_chain(events: dict[str, dict[str, Any]]) -> list[str]:
    """The chain of processes that bounded the last switch, last one first."""
    ready = {n: e["ready"] for n, e in events.items() if "ready" in e}
    if not ready:
        return []
    node: str | None = max(ready, key=lambda n: ready[n])
    chain = []
    while node is not None:
        chain.append(node)
        deps = [d for d in events[node].get("dependencies", []) if d in ready]
        node = max(deps, key=lambda d: ready[d]) if deps else None
    return chain


def cmd_analyze(args: argparse.Namespace, settings: Settings) -> int:
    path = Engine(settings).timeline_path
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise UsageError("no switch has been recorded for profile "
                         f"{settings.profile!r} yet") from None
    events: dict[str, dict[str, Any]] = data.get("processes", {})
    engine = Engine(settings)
    number = engine.profile.current_number()
    current = engine.current()
    when = data.get("started_at")
    print(f"last switch of profile {settings.profile!r}"
          + (f" at {fmt_time(when)}" if isinstance(when, (int, float)) else "")
          + (f"; current generation {number} ({current.backend}, "
             f"{len(current.processes)} processes)" if current is not None and number
             else "; nothing deployed now"))
    print('The time when a process became ready is printed after "@", '
          'the time it took from start to ready after "+".')
    chain = critical_chain(events)
    for depth, name in enumerate(chain):
        e = events[name]
        took = e["ready"] - e.get("start", e["ready"])
        prefix = "" if depth == 0 else "  " * (depth - 1) + "└─"
        print(f"{prefix}{name} @{e['ready']:.3f}s +{took:.3f}s ({e.get('check', '')})")
    failed = [n for n, e in events.items() if "failed" in e]
    if failed:
        print("failed: " + ", ".join(sorted(failed)))
    if events:
        total = max(e.get("ready", e.get("failed", 0.0)) for e in events.values())
        print(f"{len(events)} processes, all ready after {total:.3f}s")
    return 0


def _cfg_graph(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="processes model: a Python file defining processes(settings) "
                        "[default: $PROCMGMT_PROCESSES, else the current generation]")
    p.add_argument("--format", choices=["dot", "mermaid", "svg", "png"], default="dot",
                   help="output format (svg/png need Graphviz's dot)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")


class Node(Protocol):
    """What a graph draws of a process: a model's spec and a deployed process
    (:class:`~procmgmt.manifest.DeployedProcess`) both have it."""

    @property
    def name(self) -> str: ...
    @property
    def rank(self) -> int: ...
    @property
    def dependencies(self) -> Sequence[str]: ...


def to_dot(specs: Sequence[Node]) -> str:
    """Graphviz DOT: an edge from each process to each dependency."""
    lines = ["digraph processes {", "  rankdir=BT;", "  node [shape=box];"]
    for s in specs:
        lines.append(f'  "{s.name}" [label="{s.name}\\nrank {s.rank}"];')
    for s in specs:
        for d in s.dependencies:
            lines.append(f'  "{s.name}" -> "{d}";')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(specs: Sequence[Node]) -> str:
    """Mermaid flowchart: dependency --> dependent (start order reads downwards)."""
    ids = {s.name: f"p{i}" for i, s in enumerate(specs)}
    lines = ["flowchart TD"]
    for s in specs:
        lines.append(f'  {ids[s.name]}["{s.name}"]')
    for s in specs:
        for d in s.dependencies:
            lines.append(f"  {ids[d]} --> {ids[s.name]}")
    return "\n".join(lines) + "\n"


def _graph_nodes(args: argparse.Namespace, settings: Settings) -> Sequence[Node]:
    """The processes of MODEL (or $PROCMGMT_PROCESSES), else of the current generation."""
    if args.model or os.environ.get("PROCMGMT_PROCESSES"):
        return evaluate(model_path(args), settings)[1]
    gen = Engine(settings).current()
    if gen is None:
        raise UsageError(f"nothing is deployed in profile {settings.profile!r}: pass MODEL "
                         "(or set PROCMGMT_PROCESSES) to draw a model")
    return gen.processes


def cmd_graph(args: argparse.Namespace, settings: Settings) -> int:
    specs = _graph_nodes(args, settings)
    if args.format == "mermaid":
        text: str | bytes = to_mermaid(specs)
    else:
        text = to_dot(specs)
    if args.format in ("svg", "png"):
        dot = shutil.which("dot")
        if dot is None:
            raise UsageError(f"--format {args.format} needs Graphviz's 'dot' "
                             "(apt-get install graphviz); --format dot works without it")
        text = subprocess.run([dot, f"-T{args.format}"], input=str(text).encode(),
                              capture_output=True, check=True).stdout
    if args.output:
        mode = "wb" if isinstance(text, bytes) else "w"
        with open(args.output, mode) as f:
            f.write(text)
    elif isinstance(text, bytes):
        raise UsageError(f"--format {args.format} is binary: give -o FILE")
    else:
        print(text, end="")
    return 0


def register(subparsers: Subcommands) -> None:
    """Register analyze, graph."""
    subparsers.add("analyze",
        "show how the last switch spent its time (critical-chain)",
        cmd_analyze, _cfg_analyze)
    subparsers.add("graph",
        "render the dependency graph of a model or of the current generation (DOT, "
        "Mermaid, SVG, PNG)",
        cmd_graph, _cfg_graph)
