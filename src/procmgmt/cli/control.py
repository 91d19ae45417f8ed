"""``procmgmt start|stop|restart|reload NAME...``: act on single processes of the deployment."""

from __future__ import annotations

import argparse
import sys

from procmgmt.cli.common import Subcommands, activation_args, engine_options
from procmgmt.deploy.control import Control, ControlResult
from procmgmt.settings import Settings


def _names(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"processes of the current generation to {verb}")
    p.add_argument("--all", action="store_true", dest="all_",
                   help=f"{verb} every process of the current generation")
    activation_args(p)
    p.add_argument("--no-wait", action="store_true",
                   help="fail at once if a switch holds the profile lock")


def _control(args: argparse.Namespace, settings: Settings) -> Control:
    """The library side, reporting progress on stdout."""
    return Control(settings, out=sys.stdout, options=engine_options(args))


def _report(verb: str, done: list[str], unchanged: list[str], already: str) -> None:
    if done:
        print(f"{verb}: {', '.join(done)}")
    if unchanged:
        print(f"{already}: {', '.join(unchanged)}")


def _cfg_start(p: argparse.ArgumentParser) -> None:
    _names(p, "start")


def cmd_start(args: argparse.Namespace, settings: Settings) -> int:
    result = _control(args, settings).start(args.names, args.all_)
    _report("started", result.started, result.unchanged, "already running")
    return 0


def _cfg_stop(p: argparse.ArgumentParser) -> None:
    _names(p, "stop")
    p.add_argument("--with-dependents", action="store_true",
                   help="also stop the processes that depend on the named ones (first)")


def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    result: ControlResult = _control(args, settings).stop(
        args.names, args.all_, with_dependents=args.with_dependents)
    _report("stopped", result.stopped, result.unchanged, "already stopped")
    return 0


def _cfg_restart(p: argparse.ArgumentParser) -> None:
    _names(p, "restart")


def cmd_restart(args: argparse.Namespace, settings: Settings) -> int:
    result = _control(args, settings).restart(args.names, args.all_)
    named = set(args.names)
    _report("restarted", [n for n in result.started if args.all_ or n in named],
            [n for n in result.started if not args.all_ and n not in named],
            "started first (needed)")
    return 0


def _cfg_reload(p: argparse.ArgumentParser) -> None:
    _names(p, "reload")


def cmd_reload(args: argparse.Namespace, settings: Settings) -> int:
    result = _control(args, settings).reload(args.names, args.all_)
    _report("reloaded", result.reloaded, result.unchanged, "no reload_signal, skipped")
    return 0


def register(subparsers: Subcommands) -> None:
    """Register start, stop, restart, reload."""
    subparsers.add("start",
        "start processes of the current generation (and what they need first), "
        "wait until ready",
        cmd_start, _cfg_start)
    subparsers.add("stop",
        "stop processes of the current generation; they stay stopped until "
        "started or changed by a switch",
        cmd_stop, _cfg_stop)
    subparsers.add("restart",
        "stop and start processes of the current generation, wait until ready",
        cmd_restart, _cfg_restart)
    subparsers.add("reload",
        "send running processes their declared reload_signal (through the manager: "
        "init script reload, systemctl reload, supervisord signalProcess)",
        cmd_reload, _cfg_reload)
