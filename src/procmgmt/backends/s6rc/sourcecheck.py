"""A source tree checked the way s6-rc-compile checks it (s6-rc is not packaged here).

The rules, each from s6-rc-compile's documentation (doc/s6-rc-compile.html of
skarnet's s6-rc, 0.7: "Source format", "Longrun pipelining") or, where the
page is silent, its source (src/s6-rc/s6-rc-compile.c):

- **Names** (doc): a service is a subdirectory of a source directory, named
  after it; entries starting with ``.`` and non-directories are ignored; names
  are unique across all source directories, contain no ``/`` or newline, and
  do not start with the reserved ``s6rc-`` or ``s6-rc-``.
- **type** (doc): a regular file holding exactly ``oneshot``, ``longrun`` or
  ``bundle`` and a newline.
- **Bundles** (doc): ``contents.d/`` (entries named after services; ``.``
  entries skipped, as the code does), or the deprecated ``contents`` file
  (reported: procmgmt writes the current format); one of them must exist
  (the code fails without); every name must be defined; no cycle among bundles.
- **Atomic services** (doc): ``timeout-up``/``timeout-down``, when present, an
  unsigned decimal number of milliseconds (trailing newlines allowed, as the
  code reads them); ``dependencies.d/`` entries (or the deprecated
  ``dependencies`` file, reported) name defined services; no dependency cycle,
  bundles expanded to their atomic services.
- **Oneshots** (doc): ``up`` mandatory, ``down``/``reload`` optional, each one
  command line lexed by execlineb: checked here for unterminated double
  quotes and unbalanced ``{``/``}`` (the lexer's syntax errors).
- **Longruns** (doc): ``run`` a mandatory regular file (and, for
  s6-supervise, executable); ``notification-fd``, ``lock-fd``,
  ``timeout-kill``, ``timeout-finish``, ``max-death-tally`` unsigned decimals;
  a ``down`` file or ``log/`` directory would be ignored (doc), so they are
  reported: what they meant would be lost.
- **Pipelines** (doc, and the code's messages): ``producer-for`` names exactly
  one longrun whose ``consumer-for`` lists this service back; every
  ``consumer-for`` name is a longrun whose ``producer-for`` names this service;
  a producer has one consumer (a consumer may have several producers: a
  funnel), pipelines have no cycle; ``pipeline-name`` is honoured only on a
  last consumer (``consumer-for`` and no ``producer-for``; elsewhere the
  compiler ignores it with a warning, reported here), holds one valid name
  that no service or other pipeline takes; that name is a bundle of the
  pipeline's services, which contents and dependencies may name (the code
  makes the pipeline bundles before it resolves the others).

Not checked: what needs the programs (execline semantics beyond quoting, that
``run`` works, ``-h fdhuser``), the compiled format, and the flag files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence

TYPES = ("oneshot", "longrun", "bundle")
RESERVED = ("s6rc-", "s6-rc-")
#: Longrun files holding an unsigned decimal (s6-rc-compile.html, s6's servicedir.html).
NUMBER_FILES = ("notification-fd", "lock-fd", "timeout-kill", "timeout-finish",
                "max-death-tally")


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an s6-rc service, or None."""
    if not name:
        return "empty name"
    if "/" in name or "\n" in name:
        return f"{name!r}: names cannot contain a slash or a newline"
    if name.startswith(RESERVED):
        return f"{name!r}: the s6rc- and s6-rc- prefixes are reserved"
    return None


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _listing(path: str) -> list[str]:
    """Names in a ``.d`` directory (dot entries skipped, as s6-rc-compile does)."""
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


def _name_lines(text: str) -> list[str]:
    """A deprecated list file: one name per line, leading blanks and ``#`` lines skipped."""
    out = []
    for raw in text.split("\n"):
        line = raw.lstrip(" \t")
        if line and not line.startswith("#") and line not in out:
            out.append(line)
    return out


def _unsigned(text: str) -> bool:
    return text.rstrip("\n").isdigit() and text.rstrip("\n").isascii()


def execline_problem(text: str) -> str | None:
    """A syntax error the execlineb lexer reports: an unterminated ``"`` string, or
    unbalanced braces (``{``/``}`` as words of their own)."""
    depth = 0
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                return "unterminated double-quoted string"
            i += 1
            continue
        if c in "{}" and (i == 0 or text[i - 1] in " \t\n") and (i + 1 == n
                                                                 or text[i + 1] in " \t\n"):
            depth += 1 if c == "{" else -1
            if depth < 0:
                return "unmatched }"
        i += 1
    return "unmatched {" if depth else None


class _Tree:
    """The services of some source directories, as s6-rc-compile reads them."""

    def __init__(self) -> None:
        self.dirs: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.deps: dict[str, list[str]] = {}
        self.contents: dict[str, list[str]] = {}
        self.producer_for: dict[str, list[str]] = {}
        self.consumer_for: dict[str, list[str]] = {}
        self.pipeline_names: dict[str, str] = {}
        self.problems: list[str] = []

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{name}: {message}")

    def names(self, name: str, directory: str, listing: str, deprecated: str
              ) -> list[str] | None:
        """A ``.d`` directory's names, else the deprecated file's (reported), else None."""
        if os.path.isdir(os.path.join(directory, listing)):
            return _listing(os.path.join(directory, listing))
        if os.path.isfile(os.path.join(directory, deprecated)):
            self.problem(name, f"{deprecated}: deprecated format (use {listing}/)")
            return _name_lines(_read(os.path.join(directory, deprecated)))
        return None

    def add(self, name: str, directory: str) -> None:
        type_file = os.path.join(directory, "type")
        if not os.path.isfile(type_file):
            self.problem(name, "no regular file named type")
            return
        kind = _read(type_file)
        if kind not in {f"{t}\n" for t in TYPES}:
            self.problem(name, f"type must be oneshot, longrun or bundle and a newline, "
                         f"found {kind!r}")
            return
        kind = kind.strip()
        self.dirs[name], self.types[name] = directory, kind
        if kind == "bundle":
            contents = self.names(name, directory, "contents.d", "contents")
            if contents is None:
                self.problem(name, "a bundle needs contents.d/ (or a contents file)")
            self.contents[name] = contents or []
            return
        for timeout in ("timeout-up", "timeout-down"):
            path = os.path.join(directory, timeout)
            if os.path.exists(path) and not _unsigned(_read(path)):
                self.problem(name, f"{timeout} must be an unsigned number of milliseconds")
        self.deps[name] = self.names(name, directory, "dependencies.d", "dependencies") or []
        if kind == "oneshot":
            self.add_oneshot(name, directory)
        else:
            self.add_longrun(name, directory)

    def add_oneshot(self, name: str, directory: str) -> None:
        for script in ("up", "down", "reload"):
            path = os.path.join(directory, script)
            if not os.path.isfile(path):
                if script == "up":
                    self.problem(name, "a oneshot needs an up file")
                continue
            error = execline_problem(_read(path))
            if error:
                self.problem(name, f"{script}: execlineb syntax error: {error}")

    def add_longrun(self, name: str, directory: str) -> None:
        run = os.path.join(directory, "run")
        if not os.path.isfile(run):
            self.problem(name, "a longrun needs a regular file named run")
        elif not os.stat(run).st_mode & stat.S_IXUSR:
            self.problem(name, "run is not executable (s6-supervise executes it)")
        for number in NUMBER_FILES:
            path = os.path.join(directory, number)
            if os.path.exists(path) and not _unsigned(_read(path)):
                self.problem(name, f"{number} must be an unsigned decimal number")
        for ignored in ("down", "log"):
            if os.path.lexists(os.path.join(directory, ignored)):
                self.problem(name, f"{ignored}: ignored by s6-rc-compile in a definition "
                             "directory")
        for key, store in (("producer-for", self.producer_for),
                           ("consumer-for", self.consumer_for)):
            path = os.path.join(directory, key)
            if os.path.isfile(path):
                store[name] = _name_lines(_read(path))
        path = os.path.join(directory, "pipeline-name")
        if os.path.isfile(path):
            self.pipeline_names[name] = _read(path)

    # -- whole-tree rules --------------------------------------------------------

    def check_references(self) -> None:
        for table, what in ((self.contents, "contents"), (self.deps, "dependencies")):
            for name, refs in table.items():
                for ref in refs:
                    if ref not in self.types:
                        self.problem(name, f"{what}: undefined service name {ref!r}")

    def atomics(self, name: str, seen: tuple[str, ...] = ()) -> list[str]:
        """The atomic services ``name`` stands for (bundles expanded)."""
        if self.types.get(name) != "bundle":
            return [name] if name in self.types else []
        if name in seen:
            return []
        out: list[str] = []
        for member in self.contents.get(name, []):
            out += self.atomics(member, (*seen, name))
        return out

    def check_bundle_cycles(self) -> None:
        for name in self.contents:
            cycle = _find_cycle(name, {b: [m for m in ms if self.types.get(m) == "bundle"]
                                       for b, ms in self.contents.items()})
            if cycle:
                self.problem(name, "cyclic bundle definition: " + " -> ".join(cycle))

    def check_dependency_cycles(self) -> None:
        graph = {name: sorted({a for d in deps for a in self.atomics(d)})
                 for name, deps in self.deps.items()}
        reported: set[frozenset[str]] = set()
        for name in graph:
            cycle = _find_cycle(name, graph)
            if cycle and frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                self.problem(name, "dependency cycle: " + " -> ".join(cycle))

    def check_pipelines(self) -> None:
        for name, consumers in self.producer_for.items():
            if len(consumers) != 1:
                self.problem(name, "producer-for should only contain one service name")
                continue
            consumer = consumers[0]
            if self.types.get(consumer) != "longrun":
                self.problem(name, f"producer for {consumer!r}, which is not a longrun")
            elif name not in self.consumer_for.get(consumer, []):
                self.problem(name, f"producer for {consumer!r}, which does not declare it back")
        for name, producers in self.consumer_for.items():
            for producer in producers:
                if self.types.get(producer) != "longrun":
                    self.problem(name, f"consumer for {producer!r}, which is not a longrun")
                elif self.producer_for.get(producer) != [name]:
                    self.problem(name, f"consumer for {producer!r}, which does not declare "
                                 "it back")
        cycle_graph = {name: list(consumers) for name, consumers in self.producer_for.items()}
        for name in cycle_graph:
            cycle = _find_cycle(name, cycle_graph)
            if cycle:
                self.problem(name, "pipeline cycle: " + " -> ".join(cycle))
        bundles: dict[str, str] = {}
        for name, text in self.pipeline_names.items():
            if name in self.producer_for or name not in self.consumer_for:
                self.problem(name, "pipeline-name ignored: only a last consumer names a "
                             "pipeline")
                continue
            lines = _name_lines(text)
            if len(lines) != 1:
                self.problem(name, "pipeline-name should only contain one name")
                continue
            pipeline = lines[0]
            error = name_problem(pipeline)
            if error:
                self.problem(name, f"pipeline-name: {error}")
            elif pipeline in self.types:
                self.problem(name, f"pipeline-name {pipeline!r} is also a service's name")
            elif pipeline in bundles:
                self.problem(name, f"pipeline-name {pipeline!r} also names the pipeline of "
                             f"{bundles[pipeline]!r}")
            else:
                bundles[pipeline] = name
        # s6-rc-compile makes these bundles before it resolves the others, so
        # contents and dependencies may name them.
        for pipeline, last in bundles.items():
            self.types[pipeline] = "bundle"
            self.contents[pipeline] = self.pipeline_members(last)

    def pipeline_members(self, last: str) -> list[str]:
        """The services of the pipeline that ends at ``last``."""
        members, todo = [last], [last]
        while todo:
            for producer in self.consumer_for.get(todo.pop(), []):
                if producer not in members:
                    members.append(producer)
                    todo.append(producer)
        return members


def _find_cycle(start: str, graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A path from ``start`` back to itself in ``graph``, if any."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def check(sources: Sequence[str]) -> list[str]:
    """Every rule above over the source directories ``sources`` (as given to
    ``s6-rc-compile compiled source...``); the problems, empty when it would compile."""
    tree = _Tree()
    for src in sources:
        for name in sorted(os.listdir(src)):
            directory = os.path.join(src, name)
            if name.startswith(".") or not os.path.isdir(directory):
                continue
            error = name_problem(name)
            if error:
                tree.problem(name, error)
            elif name in tree.dirs:
                tree.problem(name, f"defined twice: {tree.dirs[name]} and {directory}")
            else:
                tree.add(name, directory)
    tree.check_pipelines()
    tree.check_references()
    tree.check_bundle_cycles()
    tree.check_dependency_cycles()
    return tree.problems
