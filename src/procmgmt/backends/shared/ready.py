r"""Readiness checks as POSIX ``sh``: the engine's checks, for when the manager starts alone.

procmgmt's engine probes a process's :mod:`~procmgmt.readiness` declaration
during a switch. At boot, under ``procmgmt run`` or when supervisord restarts
a program, the engine is not there: the generated files themselves must wait
until a dependency is *ready*, not merely started. This module generates
that wait as plain POSIX ``sh`` (checked with ``shellcheck -s sh`` and
``dash -n``), for the init scripts (sysvinit, bsdrc: ``start`` returns once
ready), for systemd's ``ExecStartPost=`` script, and for the foreground
proxy's dependency wait (supervisord, launchd, cygrunsrv).

One check per declaration, each a shell function that probes once, returns
0 when ready and otherwise sets ``procmgmt_ready_error`` to the reason:

``Command``
    the argv (every word quoted) or ``/bin/sh -c <string>``, with the
    declaration's environment exported in a subshell; ``timeout(1)`` bounds
    one run where it exists. The last output line goes into the error.
``PidFile``
    the pid file (the process's own when ``path`` is empty) holds a pid
    that ``kill -0`` (or ``ps -p``, for another user's process) reaches and
    that ``/proc``, where present, does not show as a zombie.
``LogLine``
    only what was written after the start counts: the log size is recorded
    before the start (a shell variable in the init scripts and the
    ``ExecStartPre=`` marker file for systemd; a marker file written by the
    dependency's proxy for proxy waits) and ``tail -c +N | grep -E`` looks
    at the rest. A log that shrank (rotated, truncated) is read from its
    start. Python ``re`` patterns are translated to POSIX ERE
    (:func:`ere`); patterns without an ERE equivalent (lookarounds,
    backreferences, ``\b``, ``\A``, possessive quantifiers, inline flags
    other than a leading ``(?i)``...) are refused by validation
    (:func:`problems`) instead of being approximated.
``TCP``
    fallback chain, first available wins (chosen once per script run):
    ``nc -z`` when ``nc`` is installed and its help mentions ``-z``
    (OpenBSD, traditional and busybox netcat, ncat), else bash's
    ``/dev/tcp`` (bounded by ``timeout(1)`` where it exists; bash starts in
    milliseconds, which matters when a proxy checks before it execs), else a
    ``python3 -c`` socket connect. None of them: the check fails and says so.
``HTTP``
    ``curl -sS -L -o /dev/null -w '%{http_code}'`` (not ``-f``: the expected
    status may be an error status), else ``wget -q -S`` (the last status
    line of the server response), else ``python3`` urllib. Redirects are
    followed, as the engine's urllib probe does. The status must equal the
    declared one.
``Notify``
    cannot be checked from sh (the process talks to a datagram socket that
    someone must own): only the engine waits for ``READY=1`` (systemd:
    ``Type=notify`` natively). :func:`checkable` says False and the
    generators leave the wait out, saying so in a comment.

The wait (``procmgmt_ready_wait``) probes every ``interval`` seconds until
``timeout``, sleeping in the background so a trapped signal (the proxy's
stop handling) ends it at once. Sleep time is counted exactly; a wall-clock
backstop (``date +%s``, whole seconds) also ends a wait whose probes
themselves are slow. Where ``sleep`` takes no fractions, whole seconds are
used. On timeout it prints ``<name>: not ready within <timeout> s (<check>):
<last error>`` to stderr and returns 1.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends._shell import command_line, in_double_quotes, quote, shell_file
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: ``PROCMGMT_READY_WAIT=0`` switches the init scripts' own readiness wait off:
#: procmgmt's engine probes readiness itself during a switch, for all processes
#: at once, instead of each script waiting in turn.
READY_WAIT_ENV = "PROCMGMT_READY_WAIT"
#: POSIX RE_DUP_MAX: the largest bound of ``{m,n}`` every ERE implementation takes.
RE_DUP_MAX = 255
#: Seconds one probe of an HTTP or TCP check may take.
PROBE_TIMEOUT = 2

#: The sh functions, one file per probe kind (sh/ready_*.sh): the wait loop and
#: helpers every script needs, the last-output-line helper, then the probes.
_COMMON = shell_file("procmgmt.backends.shared", "sh/ready_common.sh")
_LAST = shell_file("procmgmt.backends.shared", "sh/ready_last.sh")
_TCP = shell_file("procmgmt.backends.shared", "sh/ready_tcp.sh")
_HTTP = shell_file("procmgmt.backends.shared", "sh/ready_http.sh")
_PIDFILE = shell_file("procmgmt.backends.shared", "sh/ready_pidfile.sh")
_LOG = shell_file("procmgmt.backends.shared", "sh/ready_log.sh")
_COMMAND = shell_file("procmgmt.backends.shared", "sh/ready_command.sh")

_ERE_SPECIAL = set(".[\\()*+?{|^$")


class UntranslatableError(ValueError):
    """A Python regular expression without a POSIX ERE equivalent."""


# --- Python re -> POSIX ERE -----------------------------------------------------------

def _parser() -> Any:
    """CPython's regex parser (``re._parser``): the translation works on the parse
    tree, so every syntax detail (escapes, classes, quantifiers) is read exactly as
    ``re`` reads it instead of by a second, hand-written parser."""
    return importlib.import_module("re._parser")


def ere(pattern: str) -> tuple[str, bool]:
    """``(ERE, ignore_case)`` matching the same lines as ``re.search(pattern, line)``.

    Lazy quantifiers become greedy: whether *some* match exists does not
    depend on greediness. A leading ``(?i)`` becomes ``grep -i``. Raises
    :class:`UntranslatableError` for everything ERE cannot say.
    """
    import re

    try:
        tree = _parser().parse(pattern, 0)
    except re.error as exc:
        raise UntranslatableError(f"invalid regular expression: {exc}") from None
    flags = int(tree.state.flags)
    ignore_case = bool(flags & re.IGNORECASE)
    unsupported = flags & ~(re.IGNORECASE | re.UNICODE | re.MULTILINE | re.DOTALL
                            | re.VERBOSE)
    if unsupported:
        raise UntranslatableError("inline flags other than i, m, s and x have no ERE equivalent")
    text = _seq(list(tree))
    if not text:
        raise UntranslatableError("an empty pattern matches before any line is written; "
                             "give a pattern that a line must contain")
    return text, ignore_case


def _name(op: Any) -> str:
    return str(getattr(op, "name", op))


def _literal(code: int) -> str:
    ch = chr(code)
    if ch in "\n\r\0":
        raise UntranslatableError("a line break or NUL cannot occur within a log line")
    return "\\" + ch if ch in _ERE_SPECIAL else ch


def _seq(items: list[tuple[Any, Any]]) -> str:
    return "".join(_item(op, av) for op, av in items)


def _atom(items: list[tuple[Any, Any]]) -> str:
    """``items`` as something a quantifier may follow."""
    if len(items) == 1 and _name(items[0][0]) in ("LITERAL", "NOT_LITERAL", "ANY", "IN"):
        return _item(*items[0])
    if len(items) == 1 and _name(items[0][0]) == "SUBPATTERN":
        return _item(*items[0])
    body = _seq(items)
    if not body:
        raise UntranslatableError("a quantifier on an empty group has no ERE equivalent")
    return f"({body})"


def _item(op: Any, av: Any) -> str:
    name = _name(op)
    if name == "LITERAL":
        return _literal(av)
    if name == "NOT_LITERAL":
        return _bracket([("LITERAL", av)], negate=True)
    if name == "ANY":
        return "."
    if name == "IN":
        negate = bool(av) and _name(av[0][0]) == "NEGATE"
        return _bracket([(_name(o), a) for o, a in (av[1:] if negate else av)], negate)
    if name == "AT":
        where = _name(av)
        if where in ("AT_BEGINNING", "AT_BEGINNING_LINE"):
            return "^"
        if where in ("AT_END", "AT_END_LINE"):
            return "$"
        raise UntranslatableError({"AT_BOUNDARY": r"\b", "AT_NON_BOUNDARY": r"\B",
                              "AT_BEGINNING_STRING": r"\A", "AT_END_STRING": r"\Z"}.get(
                                  where, where) + " has no POSIX ERE equivalent")
    if name == "BRANCH":
        _, branches = av
        parts = [_seq(list(b)) for b in branches]
        if any(not p for p in parts):
            raise UntranslatableError("an empty alternative has no portable ERE equivalent")
        return "(" + "|".join(parts) + ")"
    if name == "SUBPATTERN":
        _, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise UntranslatableError("inline flags on a group, e.g. (?i:...), have no ERE "
                                 "equivalent")
        body = _seq(list(sub))
        if not body:
            raise UntranslatableError("an empty group has no portable ERE equivalent")
        return f"({body})"
    if name in ("MAX_REPEAT", "MIN_REPEAT"):
        low, high, sub = av
        return _atom(list(sub)) + _quantifier(int(low), high)
    if name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):
        raise UntranslatableError("possessive quantifiers and atomic groups have no ERE equivalent")
    if name in ("GROUPREF", "GROUPREF_EXISTS"):
        raise UntranslatableError("backreferences have no POSIX ERE equivalent")
    if name in ("ASSERT", "ASSERT_NOT"):
        raise UntranslatableError("lookahead and lookbehind have no POSIX ERE equivalent")
    raise UntranslatableError(f"{name} has no POSIX ERE equivalent")


def _quantifier(low: int, high: Any) -> str:
    unbounded = _name(high) == "MAXREPEAT" or int(high) >= 2 ** 31 - 1
    if (low, unbounded) == (0, True):
        return "*"
    if (low, unbounded) == (1, True):
        return "+"
    if not unbounded and (low, int(high)) == (0, 1):
        return "?"
    if low > RE_DUP_MAX or (not unbounded and int(high) > RE_DUP_MAX):
        raise UntranslatableError(f"repetition counts above {RE_DUP_MAX} are not portable in ERE")
    if unbounded:
        return f"{{{low},}}"
    return f"{{{low}}}" if low == int(high) else f"{{{low},{int(high)}}}"


_CATEGORIES = {"CATEGORY_DIGIT": "0-9", "CATEGORY_WORD": "[:alnum:]_",
               "CATEGORY_SPACE": "[:space:]"}


def _bracket(items: list[tuple[str, Any]], negate: bool) -> str:
    """A POSIX bracket expression: ``]`` first, ``[`` and ``^`` late, ``-`` last;
    backslash is an ordinary character inside brackets."""
    if not items:
        raise UntranslatableError("an empty character class has no ERE equivalent")
    chars: set[str] = set()
    parts: list[str] = []
    for name, av in items:
        if name == "LITERAL":
            ch = chr(av)
            if ch in "\n\r\0":
                if negate:
                    continue  # a line never contains it: excluding it changes nothing
                raise UntranslatableError("a line break or NUL cannot occur within a log line")
            chars.add(ch)
        elif name == "RANGE":
            lo, hi = chr(av[0]), chr(av[1])
            if lo in "]-^[" or hi in "]-^[" or lo in "\n\r\0" or hi in "\n\r\0":
                raise UntranslatableError(f"the range {lo!r}-{hi!r} cannot be written portably "
                                     "in a POSIX bracket expression")
            parts.append(f"{lo}-{hi}")
        elif name == "CATEGORY" and _name(av) in _CATEGORIES:
            parts.append(_CATEGORIES[_name(av)])
        elif name == "CATEGORY" and not negate and len(items) == 1:
            positive = _name(av).replace("CATEGORY_NOT_", "CATEGORY_")
            if positive in _CATEGORIES:
                return f"[^{_CATEGORIES[positive]}]"
            raise UntranslatableError(f"{_name(av)} has no ERE equivalent")
        else:
            raise UntranslatableError(f"{name} {_name(av)} inside a character class has no ERE "
                                 "equivalent")
    first = ["]"] if "]" in chars else []
    last = [c for c in "[^-" if c in chars]
    middle = sorted(chars - {"]", "[", "^", "-"})
    body = "".join(first + middle + parts + last)
    if body.startswith("^") and not negate:
        body = body[1:] + "^" if len(body) > 1 else "\\^"
        if body == "\\^":
            return body
    if not body:
        return "[^\n]" if not negate else "."  # only excluded line breaks: anything
    return ("[^" if negate else "[") + body + "]"


# --- validation -----------------------------------------------------------------------

def checkable(check: Any) -> bool:
    """True when ``check`` can be probed from sh (everything but Notify)."""
    return isinstance(check, rd.Readiness) and not isinstance(check, rd.Notify)


def problems(check: Any) -> list[tuple[str, str]]:
    """``(field, message)`` for a declaration the sh checks cannot express."""
    out: list[tuple[str, str]] = []
    if not isinstance(check, rd.Readiness):
        return out
    if isinstance(check, rd.LogLine):
        try:
            ere(check.pattern)
        except UntranslatableError as exc:
            out.append(("readiness.pattern", f"{check.pattern!r} cannot be checked by the "
                        f"generated scripts: {exc} (grep -E); rewrite it in POSIX ERE terms"))
    if isinstance(check, rd.Command):
        words = [check.command] if isinstance(check.command, str) else list(check.command)
        if not words or not words[0]:
            out.append(("readiness.command", "is empty"))
        for key in check.environment:
            if not key.isidentifier() or not key.isascii():
                out.append(("readiness.environment", f"{key!r} is not a variable name"))
    texts = [v for v in (getattr(check, f.name) for f in dataclasses.fields(check))
             if isinstance(v, str)]
    if isinstance(check, rd.Command):
        texts += list(check.command) if not isinstance(check.command, str) else []
        texts += [f"{k}={v}" for k, v in check.environment.items()]
    if any("\0" in t for t in texts):
        out.append(("readiness", "contains a NUL character, which no shell can pass on"))
    return out


def spec_problems(spec: ProcessSpec) -> list[tuple[str, str, str]]:
    """Backend ``validate`` rows for ``spec``'s readiness declaration."""
    return [(spec.name, field, message) for field, message in problems(spec.readiness)]


def log_offset_file(spec: ProcessSpec, settings: Settings) -> str:
    """Where a process's proxy records its log size at start (LogLine readiness
    checked by dependents): next to its pid file, writable by whoever runs it."""
    return os.path.join(spec.pid_dir(settings),
                        f"{spec.instance_name or spec.name}.ready-log-offset")


# --- sh generation --------------------------------------------------------------------

def _ms(seconds: float) -> int:
    return max(1, math.ceil(float(seconds) * 1000))


def check_call(check: rd.Readiness, *, pid_file: str | None, offset: str = "",
               offset_file: str = "") -> str:
    """One sh command that probes ``check`` once (the probe function and its
    quoted arguments). ``offset`` is sh text for the LogLine start offset (e.g.
    ``"$procmgmt_ready_offset"``), ``offset_file`` a marker file to read it from."""
    if isinstance(check, rd.TCP):
        return f"procmgmt_ready_tcp {quote(str(check.host))} {int(check.port)}"
    if isinstance(check, rd.HTTP):
        return (f"procmgmt_ready_http {quote(str(check.url))} {int(check.status)} "
                f"{quote(check.host_header or '')}")
    if isinstance(check, rd.PidFile):
        path = check.path or pid_file
        if not path:
            raise ValueError("a PidFile check without a path needs the process's pid file")
        return f"procmgmt_ready_pidfile {quote(path)}"
    if isinstance(check, rd.LogLine):
        pattern, icase = ere(check.pattern)
        return (f"procmgmt_ready_log {quote(check.path)} {quote(pattern)} {int(icase)} "
                f"{offset or quote('')} {quote(offset_file)}")
    if isinstance(check, rd.Command):
        argv = (["/bin/sh", "-c", check.command] if isinstance(check.command, str)
                else list(check.command))
        env = sorted(check.environment.items())
        words = [str(max(1, math.ceil(float(check.timeout)))), str(len(env))]
        for k, v in env:
            words += [k, v]
        return "procmgmt_ready_command " + command_line([*words, *argv])
    raise ValueError(f"{check.describe()} cannot be checked from sh")


def wait_call(name: str, check: rd.Readiness, *, pid_file: str | None, offset: str = "",
              offset_file: str = "") -> str:
    """One sh command that waits until ``check`` passes (exit 1 with a message)."""
    return (f"procmgmt_ready_wait {quote(name)} {quote(check.describe())} "
            f"{_ms(check.interval)} {_ms(check.timeout)} "
            + check_call(check, pid_file=pid_file, offset=offset, offset_file=offset_file))


def wait_lines(name: str, check: rd.Readiness, *, pid_file: str | None, offset: str = "",
               offset_file: str = "", indent: str = "") -> list[str]:
    """:func:`wait_call` as lines, with a shellcheck directive when a quoted value
    holds ``$`` or a backquote (literal on purpose: SC2016 would suggest expanding)."""
    call = wait_call(name, check, pid_file=pid_file, offset=offset, offset_file=offset_file)
    values = call.replace(offset, "") if offset else call
    lines = [f"{indent}# shellcheck disable=SC2016"] if any(c in values for c in "$`") else []
    return [*lines, indent + call]


def library(checks: Sequence[rd.Readiness]) -> str:
    """The sh functions: the wait loop and the probes ``checks`` use, each once."""
    parts = [_COMMON]
    kinds = {type(c) for c in checks}
    if kinds & {rd.TCP, rd.HTTP, rd.Command}:
        parts.append(_LAST)
    for cls, text in ((rd.TCP, _TCP), (rd.HTTP, _HTTP), (rd.PidFile, _PIDFILE),
                      (rd.LogLine, _LOG), (rd.Command, _COMMAND)):
        if cls in kinds:
            parts.append(text)
    return "\n".join(p.strip("\n") + "\n" for p in parts)


def offset_lines(check: rd.Readiness, var: str = "procmgmt_ready_offset") -> list[str]:
    """Lines that record a LogLine log's size in ``$var`` (nothing for other kinds)."""
    if not isinstance(check, rd.LogLine):
        return []
    return [f"procmgmt_ready_size {quote(check.path)}", f"{var}=$procmgmt_ready_bytes"]


def record_offset_lines(log_path: str, marker: str) -> list[str]:
    """Lines for a proxy: write the log's current size into ``marker`` before the
    program starts, so dependents read only what this run writes."""
    return [
        "",
        "# Dependents check this process's log line only after this size (this start).",
        f"procmgmt_ready_log_size=$({{ wc -c < {quote(log_path)}; }} 2>/dev/null | tr -d ' ')",
        f"if ! echo \"${{procmgmt_ready_log_size:-0}}\" > {quote(marker)}; then",
        f"    echo \"$procmgmt_name: cannot write {in_double_quotes(marker)}\" >&2",
        "    exit 1",
        "fi",
    ]


def ready_script(name: str, check: rd.Readiness, *, pid_file: str | None,
                 offset_file: str = "") -> str:
    """A standalone script: ``<script>`` waits until ready; ``<script> --mark``
    records the LogLine start offset in ``offset_file`` (systemd's
    ``ExecStartPre=``/``ExecStartPost=``)."""
    lines = [
        "#!/bin/sh",
        f"# Readiness wait of {' '.join(name.split())} (generated by procmgmt): "
        f"{' '.join(check.describe().split())}.",
        "# Exits 0 once ready, 1 with the last error after the timeout.",
        "",
        library([check]).rstrip("\n"),
        "",
    ]
    if isinstance(check, rd.LogLine):
        lines += [
            'if [ "${1-}" = --mark ]; then',
            "    # Before the start: only lines written after this size count.",
            f"    procmgmt_ready_size {quote(check.path)}",
            f"    echo \"$procmgmt_ready_bytes\" > {quote(offset_file)}",
            "    exit",
            "fi",
        ]
    lines += [*wait_lines(name, check, pid_file=pid_file, offset_file=offset_file), ""]
    return "\n".join(lines)


def dependency_waits(spec: ProcessSpec, specs: Mapping[str, ProcessSpec],
                     settings: Settings) -> dict[str, dict[str, Any]]:
    """For the proxy: dependency name -> what to wait for (readiness JSON, its pid
    file and its log-offset marker), for dependencies with an sh-checkable check."""
    out: dict[str, dict[str, Any]] = {}
    for dep in spec.dependencies:
        other = specs.get(dep)
        if other is None or not checkable(other.readiness):
            continue
        out[dep] = {"readiness": other.readiness.to_json(),
                    "pid_file": other.derived_pid_file(settings),
                    "log_offset_file": log_offset_file(other, settings)}
    return out
