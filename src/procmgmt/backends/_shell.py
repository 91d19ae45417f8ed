"""POSIX shell quoting shared by every backend that writes shell scripts."""

from __future__ import annotations

import functools
import importlib.resources
import shlex
from collections.abc import Iterable

#: How the first line of every shipped ``.sh`` file starts: it tells
#: shellcheck the dialect (and which variables the generated script sets,
#: ``disable=SC2154``) when the file is linted on its own; the line is not
#: part of the text that generated scripts embed.
SHELLCHECK_DIRECTIVE = "# shellcheck shell=sh"


@functools.cache
def shell_file(package: str, name: str) -> str:
    """The shell code kept in the package data file ``name`` of ``package``.

    Shell lives in ``.sh`` files rather than Python string constants so that
    it is linted once as what it is (shellcheck, dash -n, checkbashisms: see
    tests/backends/test_shell_files.py) and read like any shell script. The
    files hold static code only: what varies per process reaches it through
    shell variables set by the generated script, never by text substitution.
    Leading ``## `` lines are notes for whoever maintains the file (why the
    code is as it is); they stay out of the generated scripts.
    """
    text = importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")
    if not text.startswith(SHELLCHECK_DIRECTIVE):
        raise ValueError(f"{package}/{name} must start with {SHELLCHECK_DIRECTIVE!r}")
    lines = text.splitlines(keepends=True)[1:]
    while lines and lines[0].startswith("##"):
        del lines[0]
    return "".join(lines)


def quote(word: str) -> str:
    """One shell word, single-quoted unless it is plainly safe."""
    return shlex.quote(word)


def command_line(argv: Iterable[str]) -> str:
    """A command line whose words reach the program exactly as given."""
    return " ".join(quote(a) for a in argv)


def in_double_quotes(text: str) -> str:
    """``text`` safe inside a double-quoted shell word (an ``echo`` message):
    ``"``, ``$``, backquote and backslash escaped."""
    return "".join("\\" + ch if ch in '"$`\\' else ch for ch in text)


def export_lines(environment: dict[str, str]) -> list[str]:
    """``NAME='value'; export NAME`` lines, sorted by name (stable output)."""
    return [f"{k}={quote(v)}; export {k}" for k, v in sorted(environment.items())]


#: ``procmgmt_pid_owned PID UID``: true when PID's real user is the numeric
#: ``UID``; sets ``procmgmt_owner`` (sh/pid_owned.sh says why).
PID_OWNED_SH = shell_file("procmgmt.backends", "sh/pid_owned.sh")

#: ``procmgmt_make_piddir DIR USER``: the process's own pid directory
#: (sh/make_piddir.sh says why).
MAKE_PIDDIR_SH = shell_file("procmgmt.backends", "sh/make_piddir.sh")

#: ``procmgmt_poll TENTHS CMD...``, ``procmgmt_stat PID`` and ``procmgmt_alive PID``:
#: waiting for a process to exit (sh/process_wait.sh says why).
PROCESS_WAIT_SH = shell_file("procmgmt.backends", "sh/process_wait.sh")
