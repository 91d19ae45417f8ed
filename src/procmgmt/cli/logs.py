"""``procmgmt logs [-f] [-n N] [--since T] [NAME...]``: the output of the deployed
processes."""

from __future__ import annotations

import argparse
import os
import sys
import time

from procmgmt.cli.common import Subcommands
from procmgmt.deploy.control import Control
from procmgmt.deploy.engine import Engine
from procmgmt.deploy.logs import Printer, stream
from procmgmt.deploy.logtime import parse_since
from procmgmt.errors import GenerationError, UsageError
from procmgmt.settings import Settings


def _cfg_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="processes of the current generation (default: all)")
    p.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new lines (also across restarts) until interrupted")
    p.add_argument("-n", "--lines", type=int, default=None, metavar="N",
                   help="show the last N lines of each process first (default 10; with "
                        "--since, every line since then)")
    p.add_argument("--since", metavar="T",
                   help="only lines written since T: a duration back from now (30s, 10m, "
                        "2h, 1d, 1h30m) or an ISO time (2026-12-04T12:00, local time). "
                        "Exact for the journal (systemd); log files have no time per line, "
                        "so for them whole files count: the file written across T is shown "
                        "from its start (with --log-max-bytes, at most one file earlier)")


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    if args.lines is not None and args.lines < 0:
        raise UsageError(f"-n must be 0 or more, got {args.lines}")
    since = parse_since(args.since, time.time()) if args.since is not None else None
    count = args.lines if args.lines is not None or since is not None else 10
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
    stream(sources, count, args.follow, printer, since=since)
    return 0


def register(subparsers: Subcommands) -> None:
    """Register logs."""
    subparsers.add("logs",
        "show (and follow) the output of processes, each line prefixed with its name",
        cmd_logs, _cfg_logs)
