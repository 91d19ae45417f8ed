"""The roots of an image's closure: what the model, the rendered generation and the
manager name, handed to the :class:`~procmgmt.image.closure.Finder` with the reason
each is needed (the reason ``--list-closure`` prints).

- a process's executables (on its own ``path``, then the system PATH) and the
  absolute paths in its arguments and environment;
- the absolute paths in every rendered file, and the programs the generated
  shell scripts run: words in command position (:func:`command_words`), kept
  when the PATH has such a program;
- the manager's programs and PID 1, and the Python packages it imports.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator, Sequence

from procmgmt.image.closure import ClosureError, Finder
from procmgmt.image.generation import ImageGeneration
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec

#: What separates commands on a line of a generated script.
_SEPARATOR = re.compile(r"\$\(|[|;&()`]")
#: Words that put the next word in command position.
_LEADERS = frozenset({"then", "do", "else", "elif", "if", "while", "until", "exec", "!",
                      "command", "-v", "set", "--", "fi", "done", "esac", "{", "}"})
_ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=\S*")
_PROGRAM = re.compile(r"[A-Za-z][\w.+-]*")
_ABS_PATH = re.compile(r"(?<![\w.$/-])(/(?:[\w.+@-]+/)*[\w.+@-]+)")


def model(spec: ProcessSpec, finder: Finder) -> None:
    """The executables and files ``spec`` names."""
    search = ":".join(p for p in (spec.path_value(), SYSTEM_PATH) if p)
    for field, exe, args in (("daemon", spec.daemon, spec.daemon_args),
                             ("foreground_process", spec.foreground, spec.foreground_args)):
        if exe:
            finder.executable(exe, f"{spec.name}: {field}", search)
        for arg in args:
            for found in _ABS_PATH.findall(arg):
                finder.named_file(found, f"{spec.name}: named in {field} arguments")
    for key, value in sorted(spec.environment.items()):
        for found in _ABS_PATH.findall(value):
            finder.named_file(found, f"{spec.name}: named in environment {key}")
    if spec.pid_file_program:
        finder.executable(spec.pid_file_program, f"{spec.name}: pid_file_program", search)


def rendered(gen: ImageGeneration, finder: Finder) -> None:
    """The files and programs the rendered files name."""
    files = [(p.name, f) for p in gen.processes for f in p.files] + \
        [(f"{gen.backend} base files", f) for f in gen.base_files]
    for owner, f in files:
        if f.content is None:
            continue
        why = f"{owner}: named in {f.path}"
        for found in sorted(set(_ABS_PATH.findall(f.content))):
            finder.named_file(found, why)
        if f.content.startswith("#!"):
            code = "\n".join(line for line in f.content.splitlines()
                             if not line.lstrip().startswith("#"))
            for word in sorted(set(command_words(code))):
                finder.tool(word, f"{owner}: program run by {f.path}")


def command_words(code: str) -> Iterator[str]:
    """The words of shell ``code`` in command position (first of a command, after
    ``exec``, ``command -v``, ``set --``, keywords and assignments): a heuristic
    that errs on the side of carrying a program too many."""
    for line in code.splitlines():
        for part in _SEPARATOR.split(line):
            for word in part.split():
                if word in _LEADERS or _ASSIGNMENT.fullmatch(word):
                    continue
                if _PROGRAM.fullmatch(word):
                    yield word
                break


def python_package(name: str, finder: Finder) -> None:
    """Carry the directory of package ``name`` (as this interpreter imports it)."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ClosureError(f"Python package {name} is not importable here")
    for root, dirs, files in os.walk(locations[0]):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "tests"))
        for fname in sorted(files):
            if not fname.endswith((".pyc", ".pyo")):
                finder.add(os.path.join(root, fname), f"Python package {name}", scripts=False)


def manager(entrypoint: Sequence[str], programs: Sequence[str],
            finder: Finder) -> tuple[str, ...]:
    """Carry the manager's programs and PID 1; the entrypoint with PID 1's program as
    an absolute path (a container runtime's PATH lookup is not needed then)."""
    for program in programs:
        finder.executable(program, "the process manager", data_files=False)
    first = entrypoint[0]
    found = finder.executable(first, "PID 1 (the process manager)", data_files=False)
    return (first if first.startswith("/") else found, *entrypoint[1:])
