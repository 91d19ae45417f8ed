"""``procmgmt doctor``: list (and optionally stop) processes no deployed process explains."""

from __future__ import annotations

import argparse

from procmgmt.cli.main import command, configure
from procmgmt.deploy.build import load_generation
from procmgmt.deploy.doctor import find_strays, stop_strays
from procmgmt.deploy.engine import Engine
from procmgmt.deploy.profile import Profile
from procmgmt.settings import Settings


@configure("doctor")
def _cfg_doctor(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stop", action="store_true",
                   help="stop the stray processes (SIGTERM, then SIGKILL after 10 s)")


@command("doctor", "find processes of this deployment that no deployed process explains")
def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    path = Profile(settings).current_path()
    gen = load_generation(path) if path else None
    engine = Engine(settings)
    act = engine.activator(gen.backend) if gen is not None else None
    strays = find_strays(settings, gen, act)
    if engine.profile.current_number() is not None and _journal_exists(engine):
        print("an interrupted switch left a journal: run 'procmgmt repair'")
    if not strays:
        print("no stray processes")
        return 0
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
    return 0


def _journal_exists(engine: Engine) -> bool:
    import os

    return os.path.exists(engine.journal_path)
