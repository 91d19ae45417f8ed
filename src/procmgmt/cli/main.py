"""The ``procmgmt`` command line: parse, call the library, present the result.

Every subcommand shares the settings options generated from
:data:`procmgmt.settings.FIELDS`, so a flag and its PROCMGMT_* variable
can never drift apart.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from procmgmt import __version__
from procmgmt.backends import backend_names, deployable_names
from procmgmt.cli.present import run_guarded
from procmgmt.errors import UsageError
from procmgmt.settings import FIELDS, Settings, backend_fields, resolve
from procmgmt.suggest import did_you_mean

Handler = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, tuple[Handler, str]] = {}


class Parser(argparse.ArgumentParser):
    """argparse with one line per usage error: argparse's default prints the whole
    usage block (a dozen lines of settings options) before the actual mistake."""

    #: Subcommand name -> its parser (set on the top-level parser).
    subcommands: dict[str, argparse.ArgumentParser]

    def error(self, message: str) -> NoReturn:
        """``procmgmt CMD: error: MESSAGE (see 'procmgmt CMD --help')``, exit 2; a
        misspelled command or choice gets the closest valid one."""
        m = _INVALID_CHOICE.match(message)
        if m:
            word = m.group("word")
            choices = re.findall(r"'([^']*)'", m.group("choices"))
            hint = did_you_mean(word, choices)
            if m.group("arg") == "COMMAND":
                message = f"unknown command {word!r}" + (
                    hint or f" (commands: {', '.join(choices)})")
            else:
                message += hint
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def unrecognized(self, extra: Sequence[str]) -> NoReturn:
        """Arguments no option of this (sub)command takes, with the closest option."""
        options = [s for action in self._actions for s in action.option_strings]
        hint = next((h for a in extra if a.startswith("-")
                     if (h := did_you_mean(a.split("=", 1)[0], options))), "")
        self.error(f"unrecognized arguments: {' '.join(extra)}{hint}")


_INVALID_CHOICE = re.compile(r"^argument (?P<arg>[^:]+): invalid choice: '(?P<word>[^']*)' "
                             r"\(choose from (?P<choices>.*)\)$")


def command(name: str, help_text: str) -> Callable[[Handler], Handler]:
    """Register a subcommand handler."""

    def deco(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, help_text)
        return fn

    return deco


def settings_parser() -> Parser:
    """Options shared by every subcommand (the settings table)."""
    parent = Parser(add_help=False)
    group = parent.add_argument_group("settings (each also read from its PROCMGMT_* variable)")
    for f in FIELDS:
        assert f.flag is not None, f"{f.attr}: a shared setting has a flag"
        flags = [f.flag] + ([f.short] if f.short else [])
        help_text = f"{f.help} [{f.env}]"
        if f.attr == "process_manager":
            help_text += f"; one of {', '.join(backend_names())}"
        if f.kind == "bool":
            group.add_argument(*flags, dest=f.attr, action="store_true", default=None,
                               help=help_text)
        else:
            metavar = f.attr.upper()
            group.add_argument(*flags, dest=f.attr, metavar=metavar, default=None,
                               help=help_text)
    for name, fields in backend_fields().items():
        parent.add_argument_group(
            f"{name} backend settings (environment variables)",
            "\n".join(textwrap.fill(
                f"{f.env}: {f.help}" + (f" (default {f.describe_default()})"
                                        if f.describe_default() else ""),
                width=78, initial_indent="  ", subsequent_indent="      ") for f in fields))
    return parent


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


def build_parser() -> Parser:
    """The full parser (also used to render the CLI reference)."""
    from procmgmt.cli import commands  # noqa: F401  (registers the subcommands)

    parser = Parser(
        prog="procmgmt",
        description="Describe processes once in Python; deploy them as generations with "
                    f"{', '.join(deployable_names())}.",
    )
    parser.add_argument("--version", action="version", version=f"procmgmt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parent = settings_parser()
    parser.subcommands = {}
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, parents=[parent], help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.subcommands[name] = p
        configure = CONFIGURE.get(name)
        if configure:
            configure(p)
    return parser


CONFIGURE: dict[str, Callable[[argparse.ArgumentParser], None]] = {}


def configure(name: str) -> Callable[[Callable[[argparse.ArgumentParser], None]],
                                     Callable[[argparse.ArgumentParser], None]]:
    """Register the argument setup of a subcommand."""

    def deco(fn: Callable[[argparse.ArgumentParser], None]) -> Callable[
            [argparse.ArgumentParser], None]:
        CONFIGURE[name] = fn
        return fn

    return deco


def settings_from(args: argparse.Namespace) -> Settings:
    """Resolve settings from the parsed options and the environment."""
    from procmgmt.ids import with_ids

    cli: dict[str, Any] = {f.attr: getattr(args, f.attr, None) for f in FIELDS}
    settings = resolve(cli)
    if args.command == "id-assign" or getattr(args, "assign_ids", False):
        return settings  # the ids file is an input/output of the assigner there
    return with_ids(settings, settings.ids_file)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = parser.subcommands.get(args.command or "")
        if isinstance(sub, Parser):
            sub.unrecognized(extra)
        parser.unrecognized(extra)
    if not args.command:
        parser.print_help()
        return 2

    def run() -> int:
        settings = settings_from(args)
        handler = COMMANDS[args.command][0]
        return handler(args, settings)

    return run_guarded(run)


def fmt_time(ts: float) -> str:
    """Local time as ``YYYY-MM-DD HH:MM:SS``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


if __name__ == "__main__":
    sys.exit(main())
