"""The ``procmgmt`` command line: parse, call the library, present the result.

Every subcommand shares the settings options generated from
:data:`procmgmt.settings.FIELDS`, so a flag and its PROCMGMT_* variable
can never drift apart.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from procmgmt import __version__
from procmgmt.backends import backend_names, deployable_names
from procmgmt.cli import (
    agnostic,
    chainload,
    commands,
    completion,
    control,
    doctor,
    idassign,
    image,
    inspect,
    logs,
    network,
)
from procmgmt.cli.common import HANDLER, Handler, Subcommands
from procmgmt.cli.present import run_guarded
from procmgmt.settings import FIELDS, Settings, backend_fields, resolve
from procmgmt.suggest import did_you_mean

#: Every module that adds subcommands, in the order ``--help`` lists them. Each
#: has ``register(subparsers)``; none imports this module.
COMMAND_MODULES = (commands, agnostic, chainload, control, doctor, idassign, inspect, logs,
                   image, network, completion)


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


def build_parser() -> Parser:
    """The full parser (also used to render the CLI reference)."""
    parser = Parser(
        prog="procmgmt",
        description="Describe processes once in Python; deploy them as generations with "
                    f"{', '.join(deployable_names())}.",
    )
    parser.add_argument("--version", action="version", version=f"procmgmt {__version__}")
    subcommands = Subcommands(parser.add_subparsers(dest="command", metavar="COMMAND"),
                              settings_parser())
    for module in COMMAND_MODULES:
        module.register(subcommands)
    parser.subcommands = subcommands.parsers
    return parser


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
        args, extra = _intermixed(parser, args, extra,
                                  list(sys.argv[1:] if argv is None else argv))
    if extra:
        sub = parser.subcommands.get(args.command or "")
        if isinstance(sub, Parser):
            sub.unrecognized(extra)
        parser.unrecognized(extra)
    if not args.command:
        parser.print_help()
        return 2

    handler: Handler = getattr(args, HANDLER)

    def run() -> int:
        return handler(args, settings_from(args))

    show_library_warnings()
    return run_guarded(run)


def _intermixed(parser: Parser, args: argparse.Namespace, extra: list[str],
                argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The subcommand's line parsed again with options anywhere between its words
    (``network switch --dry-run INFRA DIST MODEL``).

    argparse fills a subcommand's positionals from one run of words, so the words
    after an option in their middle are left over. Only then is the subcommand's
    part of the line parsed again, options first and then every word
    (``parse_known_intermixed_args``): a line the ordinary parse accepts keeps its
    meaning. A subcommand whose positionals cannot be intermixed (a ``REMAINDER``)
    keeps the first result."""
    sub = parser.subcommands.get(args.command or "")
    words = [i for i, a in enumerate(argv) if not a.startswith("-")]
    if sub is None or not words or argv[words[0]] != args.command:
        return args, extra
    try:
        return sub.parse_known_intermixed_args(
            argv[words[0] + 1:], argparse.Namespace(command=args.command))
    except TypeError:  # argparse refuses intermixing for this subcommand's arguments
        return args, extra


class _StderrWarnings(logging.Handler):
    """``procmgmt: warning: MESSAGE`` on whatever ``sys.stderr`` is at the time
    (a stream bound once would miss a later redirection of stderr)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(f"procmgmt: warning: {record.getMessage()}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            self.handleError(record)


def show_library_warnings() -> None:
    """Route the library's warnings (the ``procmgmt`` loggers) to stderr, once: the
    library only logs them; how they look is the command line's business."""
    root = logging.getLogger("procmgmt")
    if not any(isinstance(h, _StderrWarnings) for h in root.handlers):
        root.addHandler(_StderrWarnings())


if __name__ == "__main__":
    sys.exit(main())
