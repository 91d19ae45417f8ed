"""``procmgmt completion bash|zsh|fish``: shell completion scripts.

The scripts are package data (``cli/shells/procmgmt.<shell>``) with one
``# @DATA@`` line that is replaced by what the parser of :mod:`procmgmt.cli.main`
declares: the commands, each command's options, what an option's value is
(a file, one of some words, anything) and what its positional arguments are.
So a new command or option completes without touching the scripts.

Process names are the one thing that cannot be fixed when the script is
printed: they are those of the current generation at the time of
completion, printed by ``procmgmt completion --names`` (it reads one
manifest and nothing else), with the settings options on the line being
completed (``--state-dir``, ``-p``) passed along.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.resources
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from procmgmt.backends import backend_names
from procmgmt.cli.common import Subcommands
from procmgmt.deploy.profile import Profile
from procmgmt.errors import ManifestError, UsageError
from procmgmt.manifest import load_generation
from procmgmt.settings import FIELDS, Settings

SHELLS = ("bash", "zsh", "fish")

#: What completes a value or positional argument, besides a list of words.
FILE, NAMES, ANY = "@file", "@names", "@any"
#: The line of each script that the generated data replaces.
_MARKER = "# @DATA@"
#: The namespace attribute carrying every subcommand's parser to the handler.
_PARSERS = "_completion_parsers"


@dataclass
class Command:
    """What completion needs to know of one subcommand."""

    name: str
    options: list[str] = field(default_factory=list)
    #: Option string -> FILE, ANY or the words its value is one of.
    values: dict[str, str] = field(default_factory=dict)
    #: FILE, NAMES, ANY, the words a positional is one of, or "" (none).
    positional: str = ""
    #: One line saying what the command does (fish shows it beside the name).
    description: str = ""
    #: Option string -> one line saying what it does.
    helps: dict[str, str] = field(default_factory=dict)


def _value_kind(action: argparse.Action) -> str:
    """What completes the value of ``action``."""
    if action.choices is not None:
        return " ".join(str(c) for c in action.choices)
    if action.dest == "process_manager":
        return " ".join(backend_names())
    path_settings = {f.attr for f in FIELDS if f.kind == "path"}
    metavar = str(action.metavar or "")
    if action.dest in path_settings or metavar in ("FILE", "OUTDIR", "MODEL"):
        return FILE
    if metavar == "NAME" and not action.option_strings:
        return NAMES
    return ANY


#: Longest description fish gets (it truncates long ones itself, mid-word).
_DESCRIPTION_MAX = 60


def _one_line(text: str | None, params: Mapping[str, object] | None = None) -> str:
    """The first clause of a help text, on one line and at most
    :data:`_DESCRIPTION_MAX` characters (``%(default)s`` expanded as argparse does)."""
    if not text or text == argparse.SUPPRESS:
        return ""
    if params is not None:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            text = text % params
    line = " ".join(text.split())
    for stop in ("; ", ". ", " (", ": "):
        line = line.split(stop, 1)[0]
    line = line.rstrip(".")
    if len(line) > _DESCRIPTION_MAX:
        line = line[:_DESCRIPTION_MAX - 3].rsplit(" ", 1)[0] + "..."
    return line


def commands(subcommands: Mapping[str, argparse.ArgumentParser]) -> list[Command]:
    """Every subcommand (name -> its parser, as :class:`Subcommands` keeps them), with
    its options, what completes their values and one line of help for each."""
    out = []
    for name, sub in subcommands.items():
        cmd = Command(name, description=_one_line(sub.description))
        for action in sub._actions:
            if action.option_strings:
                cmd.options += action.option_strings
                described = _one_line(action.help, dict(vars(action), prog=sub.prog))
                for option in action.option_strings:
                    cmd.helps[option] = described
                if action.nargs != 0:
                    kind = _value_kind(action)
                    for option in action.option_strings:
                        cmd.values[option] = kind
            elif not cmd.positional:
                cmd.positional = _value_kind(action)
        out.append(cmd)
    return out


def _settings_options() -> list[str]:
    """The settings options that take a value (those ``--names`` is given)."""
    return [s for f in FIELDS if f.kind != "bool"
            for s in (f.flag, f.short) if s is not None]


def script(shell: str, subcommands: Mapping[str, argparse.ArgumentParser]) -> str:
    """The completion script for ``shell``."""
    template = importlib.resources.files("procmgmt.cli").joinpath(
        f"shells/procmgmt.{shell}").read_text(encoding="utf-8")
    cmds = commands(subcommands)
    data = {"bash": _bash_data, "zsh": _zsh_data, "fish": _fish_data}[shell](cmds)
    if _MARKER not in template:  # pragma: no cover - the shipped files have it
        raise ValueError(f"procmgmt.{shell} has no {_MARKER} line")
    return template.replace(_MARKER, "\n".join(data))


def _q(word: str) -> str:
    return shlex.quote(word)


def _array(declare: str, name: str, pairs: dict[str, str], zsh: bool) -> Iterator[str]:
    yield f"{declare} {name}"
    yield f"{name}=("
    for key, value in pairs.items():
        yield f"    {_q(key)} {_q(value)}" if zsh else f"    [{_q(key)}]={_q(value)}"
    yield ")"


def _sh_data(cmds: list[Command], declare: str, zsh: bool) -> list[str]:
    lines = [f"_procmgmt_commands={_q(' '.join(c.name for c in cmds))}",
             f"_procmgmt_settings={_q(' '.join(_settings_options()))}"]
    lines += _array(declare, "_procmgmt_options",
                    {c.name: " ".join(c.options) for c in cmds}, zsh)
    lines += _array(declare, "_procmgmt_positionals",
                    {c.name: c.positional for c in cmds if c.positional}, zsh)
    lines += _array(declare, "_procmgmt_values",
                    {f"{c.name} {o}": v for c in cmds for o, v in c.values.items()}, zsh)
    return lines


def _bash_data(cmds: list[Command]) -> list[str]:
    return _sh_data(cmds, "declare -gA", zsh=False)


def _zsh_data(cmds: list[Command]) -> list[str]:
    return _sh_data(cmds, "typeset -gA", zsh=True)


def _described(text: str) -> str:
    """fish's ``-d TEXT`` (nothing when there is no text)."""
    return f" -d {_q(text)}" if text else ""


def _fish_data(cmds: list[Command]) -> list[str]:
    lines = [f"set -g __procmgmt_settings {' '.join(_q(s) for s in _settings_options())}"]
    lines += [f"complete -c procmgmt -n __fish_use_subcommand -a {_q(c.name)}"
              + _described(c.description) for c in cmds]
    lines += ["complete -c procmgmt -n __fish_use_subcommand -l help -d 'show the help'",
              "complete -c procmgmt -n __fish_use_subcommand -l version -d 'show the version'"]
    for c in cmds:
        when = f"-n {_q('__fish_seen_subcommand_from ' + c.name)}"
        if c.positional == FILE:
            lines.append(f"complete -c procmgmt {when} -F")
        elif c.positional == NAMES:
            lines.append(f"complete -c procmgmt {when} -a '(__procmgmt_names)'")
        elif c.positional not in ("", ANY):
            lines.append(f"complete -c procmgmt {when} -a {_q(c.positional)}")
        for option in c.options:
            flag = f"-l {_q(option[2:])}" if option.startswith("--") else f"-s {_q(option[1:])}"
            value = c.values.get(option)
            desc = _described(c.helps.get(option, ""))
            if value is None:
                lines.append(f"complete -c procmgmt {when} {flag}{desc}")
            elif value == FILE:
                lines.append(f"complete -c procmgmt {when} {flag} -r -F{desc}")
            elif value == ANY:
                lines.append(f"complete -c procmgmt {when} {flag} -r{desc}")
            else:
                lines.append(f"complete -c procmgmt {when} {flag} -x -a {_q(value)}{desc}")
    return lines


def process_names(settings: Settings) -> list[str]:
    """Names of the processes of the current generation (none when nothing is
    deployed or the manifest cannot be read: completion offers nothing then)."""
    path = Profile(settings).current_path()
    if not path:
        return []
    try:
        return [p.name for p in load_generation(path).processes]
    except (OSError, ManifestError):
        return []


def _cfg_completion(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", nargs="?", choices=SHELLS,
                   help="the shell to print the completion script for")
    p.add_argument("--names", action="store_true",
                   help="print the process names of the current generation, one a line "
                        "(what the scripts complete NAME arguments with)")


def cmd_completion(args: argparse.Namespace, settings: Settings) -> int:
    if args.names:
        for name in process_names(settings):
            print(name)
        return 0
    if args.shell is None:
        raise UsageError("name a shell: procmgmt completion bash|zsh|fish")
    print(script(args.shell, getattr(args, _PARSERS)), end="")
    return 0


def register(subparsers: Subcommands) -> None:
    """Register completion."""
    p = subparsers.add("completion",
        "print a completion script for bash, zsh or fish (e.g. "
        "'source <(procmgmt completion bash)')",
        cmd_completion, _cfg_completion)
    # The same dict the other modules fill as they register: complete when it is read.
    p.set_defaults(**{_PARSERS: subparsers.parsers})
