"""``procmgmt doctor``: list (and optionally stop) processes no deployed process explains,
and report files and accounts that would let others steer root or that break a
service's access to its state (:mod:`procmgmt.deploy.audit`)."""

from __future__ import annotations

import argparse
import os

from procmgmt.cli.common import Subcommands
from procmgmt.deploy.audit import audit
from procmgmt.deploy.doctor import find_strays, stop_strays
from procmgmt.deploy.engine import Engine
from procmgmt.deploy.profile import Profile
from procmgmt.manifest import Generation, load_generation
from procmgmt.settings import Settings


def _cfg_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stop", action="store_true",
                   help="stop the stray processes (SIGTERM, then SIGKILL after 10 s)")


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    path = Profile(settings).current_path()
    gen = load_generation(path) if path else None
    engine = Engine(settings)
    act = engine.activator(gen.backend) if gen is not None else None
    strays = find_strays(settings, gen, act)
    if engine.profile.current_number() is not None and os.path.exists(engine.journal_path):
        print("an interrupted switch left a journal: run 'procmgmt repair'")
    status = _report_findings(settings, gen)
    if not strays:
        print("no stray processes")
        return status
    print(f"{len(strays)} stray process{'es' if len(strays) != 1 else ''} of this deployment:")
    for s in strays:
        print(f"  pid {s.pid:<8} {s.process:<24} {s.cmdline}")
    if not args.stop:
        print("run 'procmgmt doctor --stop' to stop them")
        return 1
    left = stop_strays(strays)
    if left:
        print(f"could not stop: {' '.join(map(str, left))}")
        return 1
    print("stopped")
    return status


def _report_findings(settings: Settings, gen: Generation | None) -> int:
    """Print the audit's problems (by kind) and notes; 1 when there is a problem."""
    findings = audit(settings, gen)
    problems = [f for f in findings if f.problem]
    kinds: dict[str, list[str]] = {}
    for f in problems:
        kinds.setdefault(f.kind, []).append(str(f))
    for kind, lines in kinds.items():
        print(f"{kind}:")
        for line in lines:
            print(f"  {line}")
    for f in findings:
        if not f.problem:
            print(f"note: {f}")
    if not problems:
        print("no unsafe files, foreign pid files or changed account ids")
        return 0
    return 1


def register(subparsers: Subcommands) -> None:
    """Register doctor."""
    subparsers.add("doctor",
        "find stray processes, unsafe files and changed account ids of this "
        "deployment",
        cmd_doctor, _cfg_doctor)
