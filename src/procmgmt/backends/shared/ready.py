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
    start. Patterns are translated to POSIX ERE by
    :func:`procmgmt.backends.shared.ere.ere`, which reads a documented subset
    of Python's syntax that means the same in both; anything outside it
    (lookarounds, backreferences, ``\b``, ``\A``, possessive quantifiers,
    inline flags other than a leading ``(?i)``...) is refused by validation
    (:func:`problems`, with its offset) instead of being approximated.
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
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends._shell import command_line, in_double_quotes, quote, shell_file
from procmgmt.backends.shared.ere import UntranslatableError, ere
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: ``PROCMGMT_READY_WAIT=0`` switches the init scripts' own readiness wait off:
#: procmgmt's engine probes readiness itself during a switch, for all processes
#: at once, instead of each script waiting in turn.
READY_WAIT_ENV = "PROCMGMT_READY_WAIT"
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
                        f"generated scripts (grep -E): {exc}; keep to the subset in "
                        "docs/backends.md (readiness)"))
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
