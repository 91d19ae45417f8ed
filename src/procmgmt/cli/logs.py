"""``procmgmt logs [-f] [-n N] [NAME...]``: the output of the deployed processes."""

from __future__ import annotations

import argparse
import os
import sys

from procmgmt.cli.common import Subcommands
from procmgmt.deploy.control import Control
from procmgmt.deploy.engine import Engine
from procmgmt.deploy.logs import Printer, stream
from procmgmt.errors import GenerationError, UsageError
from procmgmt.settings import Settings


def _cfg_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="processes of the current generation (default: all)")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new lines (also across restarts) until interrupted")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N",
                   help="show the last N lines of each process first (default 10)")


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    if args.lines < 0:
        raise UsageError(f"-n must be 0 or more, got {args.lines}")
    engine = Engine(settings)
    gen = engine.current()
    if gen is None:
        raise GenerationError(f"nothing is deployed in profile {settings.profile!r} "
                              "(see 'procmgmt switch MODEL')")
    procs = Control.resolve(gen, args.names, not args.names)
    act = engine.activator(gen.backend)
    sources = [(p.name, act.log_source(gen, p)) for p in procs]
    for name, source in sources:
        if not source.files and not source.journal:
            print(f"procmgmt: {name}: the {gen.backend} backend keeps no log of it",
                  file=sys.stderr)
        for path in source.files:
            if os.path.exists(path) and not os.access(path, os.R_OK):
                print(f"procmgmt: {name}: cannot read {path} (run as its owner or root)",
                      file=sys.stderr)
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    printer = Printer(sys.stdout, [name for name, _ in sources], colour)
    stream(sources, args.lines, args.follow, printer)
    return 0


def register(subparsers: Subcommands) -> None:
    """Register logs."""
    subparsers.add("logs",
        "show (and follow) the output of processes, each line prefixed with its name",
        cmd_logs, _cfg_logs)
