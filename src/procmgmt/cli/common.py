"""What the command modules share: registering a subcommand, the model argument,
the activation options, time formatting.

The command modules import this, never :mod:`procmgmt.cli.main`: main imports
them (its ``COMMAND_MODULES``) and calls each one's ``register``, so the
imports run one way only.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

from procmgmt.deploy.options import DEFAULT_MAX_PARALLEL, Options
from procmgmt.errors import UsageError
from procmgmt.numbers import seconds_problem
from procmgmt.settings import Settings

#: A subcommand: parsed arguments and resolved settings in, exit status out.
Handler = Callable[[argparse.Namespace, Settings], int]
#: Adds a subcommand's own arguments to its parser.
Configure = Callable[[argparse.ArgumentParser], None]

#: The namespace attribute that carries the handler of the chosen subcommand.
HANDLER = "_handler"


class Subcommands:
    """The subcommands of one parser: each gets the shared settings options (the
    parent parser) and remembers its handler in the parsed arguments."""

    def __init__(self, action: argparse._SubParsersAction[Any],
                 settings_parent: argparse.ArgumentParser) -> None:
        self._action = action
        self._parent = settings_parent
        #: Subcommand name -> its parser, in registration (``--help``) order.
        self.parsers: dict[str, argparse.ArgumentParser] = {}

    def add(self, name: str, help_text: str, handler: Handler,
            configure: Configure | None = None) -> argparse.ArgumentParser:
        """Register subcommand ``name``; ``configure`` adds its own arguments."""
        if name in self.parsers:
            raise ValueError(f"subcommand {name!r} registered twice")
        p: argparse.ArgumentParser = self._action.add_parser(
            name, parents=[self._parent], help=help_text, description=help_text,
            # keeps the per-backend settings lists (group descriptions) one per line
            formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(**{HANDLER: handler})
        if configure is not None:
            configure(p)
        self.parsers[name] = p
        return p


def model_arg(p: argparse.ArgumentParser, required: bool = False) -> None:
    """The processes model path (default: $PROCMGMT_PROCESSES)."""
    p.add_argument("model", nargs=None if required else "?", metavar="MODEL",
                   help="processes model: a Python file defining processes(settings) "
                        "[default: $PROCMGMT_PROCESSES]")


def model_path(args: argparse.Namespace) -> str:
    """The model given on the command line or in PROCMGMT_PROCESSES."""
    path = getattr(args, "model", None) or os.environ.get("PROCMGMT_PROCESSES")
    if not path:
        raise UsageError("no processes model given: pass MODEL or set PROCMGMT_PROCESSES")
    return str(path)


def activation_args(p: argparse.ArgumentParser) -> None:
    """--max-parallel / --sequential."""
    p.add_argument("--max-parallel", type=int, metavar="N", default=DEFAULT_MAX_PARALLEL,
                   help="run at most N start or stop actions at once (scripts, manager "
                        "calls; a start or stop a running supervisor carries out, as "
                        f"with runit and s6, is not counted; default {DEFAULT_MAX_PARALLEL})")
    p.add_argument("--sequential", action="store_true",
                   help="one process at a time in strict dependency order (as the original)")
    p.add_argument("--start-grace", type=float, metavar="SECONDS",
                   default=Options.start_grace,
                   help="a process without a readiness check counts as started once it "
                        "is still alive this long after its start (0: once it runs, as "
                        f"s6 and runit count; default {Options.start_grace:g})")


def engine_options(args: argparse.Namespace) -> Options:
    """Engine options from --max-parallel/--sequential/--start-grace/--no-rollback/--no-wait."""
    n = 1 if getattr(args, "sequential", False) else getattr(args, "max_parallel",
                                                             DEFAULT_MAX_PARALLEL)
    if n < 1:
        raise UsageError(f"--max-parallel must be at least 1, got {n}")
    grace = getattr(args, "start_grace", Options.start_grace)
    problem = seconds_problem(grace, zero_ok=True)
    if problem:
        raise UsageError(f"--start-grace {problem}")
    return Options(max_parallel=n, rollback_on_failure=not getattr(args, "no_rollback", False),
                   wait_for_lock=not getattr(args, "no_wait", False), start_grace=grace)


def fmt_time(ts: float) -> str:
    """Local time as ``YYYY-MM-DD HH:MM:SS``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
