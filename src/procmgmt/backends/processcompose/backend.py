"""The process-compose export: each process an entry of ``processes:``.

The vocabulary is process-compose's configuration reference
(https://f1bonacc1.github.io/process-compose/launcher/,
https://f1bonacc1.github.io/process-compose/health/,
https://f1bonacc1.github.io/process-compose/configuration/). Two rules of
that reader shape every value written here:

* process-compose substitutes ``$VAR`` in the whole file text before parsing
  it, and turns ``$$`` into ``$``; every ``$`` of the model is written as
  ``$$``, so the substitution sees no variable at all and a value keeps its
  ``$`` (``disable_env_expansion: true`` is no way out: the substitution runs,
  and can fail on a value such as ``${``, before that setting is read);
* it renders ``working_dir``, ``log_location``, ``description``, the
  ``environment`` entries and the probes' fields as Go templates (always: it
  adds ``PC_REPLICA_NUM`` to every process's variables), so a ``{{`` in those
  is written as ``{{"{{"}}`` (the escape its documentation gives). The
  program and its arguments go into ``entrypoint`` (an argv, neither rendered
  nor passed to a shell), never into the ``command`` string.
"""

from __future__ import annotations

import signal
import urllib.parse
from collections.abc import Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.base import (
    ALL_RESTART_POLICIES,
    SH_READINESS,
    Activator,
    Backend,
    BuildContext,
    Capabilities,
    Coverage,
    File,
    Lifecycle,
    Ordering,
    PidFiles,
    ProcessMode,
    Support,
)
from procmgmt.backends.shared import liveness, ready, yamlout
from procmgmt.backends.shared.exports import (
    dollars_doubled,
    inline_argv,
    needs_proxy,
    probe_script,
    probe_timing,
    proxy_native,
    whole_seconds,
)
from procmgmt.backends.shared.proxy import PROXY_KEY
from procmgmt.errors import Problem, UsageError
from procmgmt.model.spec import SYSTEM_PATH, ProcessSpec
from procmgmt.settings import Settings

#: The file this export writes (one of the names process-compose finds by itself).
DOCUMENT = "process-compose.yaml"
#: The configuration format version its documentation's examples declare.
VERSION = "0.5"
#: Seconds process-compose waits for a process to stop before SIGKILL.
DEFAULT_SHUTDOWN_TIMEOUT = 10
#: The model's restart policies in process-compose's ``availability.restart`` words.
RESTART = {"no": "no", "on-failure": "on_failure", "always": "always"}
#: The first status process-compose's ``http_get`` does not accept as expected
#: (``status_code`` 1..399; anything else is taken as 200).
_HTTP_STATUS_LIMIT = 400


def template_literal(text: str) -> str:
    """``text`` as a field that is also rendered as a Go template: :func:`dollars_doubled`,
    and every ``{{`` written as ``{{"{{"}}``, the escape process-compose's
    documentation gives."""
    return dollars_doubled(text).replace("{{", '{{"{{"}}')


def _signal_number(name: str) -> int:
    """process-compose's ``shutdown.signal`` is a number (this platform's)."""
    return int(signal.Signals[f"SIG{name}"])


def _probed(spec: ProcessSpec) -> bool:
    """True when ``spec`` gets a readiness probe (everything but Notify)."""
    return ready.checkable(spec.readiness)


def http_get(check: rd.HTTP) -> dict[str, Any] | None:
    """A native ``http_get`` probe for ``check``, or None when process-compose's
    cannot check it: a status outside 1..399, or an IPv6 host (it builds the URL
    as ``scheme://host:port/path``, without brackets)."""
    parts = urllib.parse.urlsplit(check.url)
    if not 0 < check.status < _HTTP_STATUS_LIMIT or ":" in (parts.hostname or ""):
        # An IPv6 address: process-compose joins host and port without brackets.
        return None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    probe: dict[str, Any] = {
        "host": template_literal(parts.hostname or "127.0.0.1"),
        "scheme": parts.scheme or "http",
        "path": template_literal(path),
        "port": str(check.port()),
        "status_code": check.status,
    }
    if check.host_header:
        probe["headers"] = {"Host": dollars_doubled(check.host_header)}
    return probe


def readiness_probe(spec: ProcessSpec, settings: Settings) -> dict[str, Any] | None:
    """The ``readiness_probe`` of ``spec``: ``http_get`` for an HTTP check whose
    status it can expect, else an ``exec`` probe running the shared sh check once
    (TCP, Command, PidFile, LogLine). None without a checkable declaration."""
    check = spec.readiness
    if not ready.checkable(check):
        return None
    period, each, failures = probe_timing(check)
    probe: dict[str, Any] = {}
    native = http_get(check) if isinstance(check, rd.HTTP) else None
    if native is not None:
        probe["http_get"] = native
    else:
        offset_file = (ready.log_offset_file(spec, settings)
                       if isinstance(check, rd.LogLine) else "")
        script = probe_script(check, pid_file=spec.derived_pid_file(settings),
                              offset_file=offset_file)
        probe["exec"] = {"command": template_literal(script)}
    probe.update({"period_seconds": period, "timeout_seconds": each,
                  "failure_threshold": failures})
    return probe


class ProcessComposeBackend(Backend):
    """One ``process-compose.yaml`` for the generation; nothing deployed."""

    name = "process-compose"
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.NATIVE,
        ordering=Ordering.EDGES,
        ordering_detail="depends_on, condition process_healthy (a dependency with a "
                        "readiness probe) or process_started",
        user_switching=Support.EMULATED,
        privileges=frozenset(),
        tested=Coverage.GENERATED,
        readiness=Support.NATIVE,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        deploys=False,
        lifecycle=Lifecycle(default_restart="no", restart_native=ALL_RESTART_POLICIES,
                            restart_delay=Support.NATIVE, restart_max=Support.WARNED,
                            default_stop_timeout=float(DEFAULT_SHUTDOWN_TIMEOUT),
                            stop_timeout=Support.NATIVE, liveness=Support.NATIVE),
        notes="an export: one process-compose.yaml, run by 'process-compose up'; "
              "readiness: readiness_probe (http_get, or exec running the shared sh "
              "check), dependents wait with condition process_healthy; daemon-only "
              "processes, initialize, umask, nice and user run through the foreground "
              "proxy inlined as /bin/sh -c (user: setpriv, so process-compose runs as "
              "root and the accounts exist)",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The process's entry of ``processes:``; the proxy's parameters under
        ``_proxy`` when it runs through the inlined proxy."""
        settings = ctx.settings
        user = spec.effective_user(settings)
        check = spec.readiness
        pid_probe = isinstance(check, rd.PidFile) and not check.path
        log_probe = isinstance(check, rd.LogLine)
        native: dict[str, Any] = {"description": template_literal(spec.description)}
        if needs_proxy(spec) or user or pid_probe or log_probe:
            native[PROXY_KEY] = proxy_native(spec, ctx, user=user, write_pid_file=pid_probe,
                                             record_log_offset=log_probe)
        else:
            assert spec.foreground is not None
            native["entrypoint"] = [dollars_doubled(w) for w in (spec.foreground,
                                                            *spec.foreground_args)]
            if spec.directory:
                native["working_dir"] = template_literal(spec.directory)
        env = dict(spec.environment)
        path = spec.path_value()
        if path:
            env["PATH"] = f"{path}:{SYSTEM_PATH}"
        if env:
            native["environment"] = [template_literal(f"{k}={v}")
                                     for k, v in sorted(env.items())]
        if spec.dependencies:
            native["depends_on"] = {
                dep: {"condition": "process_healthy" if _probed(ctx.specs[dep])
                      else "process_started"}
                for dep in spec.dependencies}
        probe = readiness_probe(spec, settings)
        if probe is not None:
            native["readiness_probe"] = probe
        elif check is not None:
            ctx.warn(spec, self.name, f"readiness {check.describe()} cannot be probed by "
                     "process-compose; dependents wait only until it started")
        live = spec.liveness
        if isinstance(live, rd.Liveness):
            # process-compose restarts the process (by its restart policy) after
            # failure_threshold failed probes.
            period, each, failures, delay = liveness.timing(live)
            handler = (http_get(live.check) if isinstance(live.check, rd.HTTP) else None)
            native["liveness_probe"] = {
                **({"http_get": handler} if handler is not None else {"exec": {
                    "command": template_literal(probe_script(liveness.probed(live),
                                                             pid_file=None))}}),
                "initial_delay_seconds": delay, "period_seconds": period,
                "timeout_seconds": each, "failure_threshold": failures}
        availability: dict[str, Any] = {"restart": RESTART[spec.restart or "no"]}
        if spec.restart_delay is not None:
            availability["backoff_seconds"] = whole_seconds(spec.restart_delay)
            if availability["backoff_seconds"] != spec.restart_delay:
                ctx.warn(spec, self.name, f"restart_delay={spec.restart_delay:g} is rounded "
                         f"up to backoff_seconds: {availability['backoff_seconds']} "
                         "(whole seconds)")
        if spec.restart_max is not None:
            availability["max_restarts"] = spec.restart_max
            ctx.warn(spec, self.name, f"restart_max={spec.restart_max} is max_restarts, "
                     "which counts every restart, not only those of the last "
                     "RESTART_WINDOW seconds")
        native["availability"] = availability
        shutdown: dict[str, Any] = {"signal": _signal_number(spec.stop_signal)}
        if spec.stop_timeout is not None:
            shutdown["timeout_seconds"] = whole_seconds(spec.stop_timeout)
        native["shutdown"] = shutdown
        native["log_location"] = template_literal(spec.log_file(settings))
        native["namespace"] = dollars_doubled(settings.profile)
        return native

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """Nothing per process: the entry goes into the generation's document."""
        return []

    def generation_files(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[File]:
        """``process-compose.yaml``: every process's (overridden) entry, the inlined
        proxy as the ``entrypoint`` of those that need it."""
        processes: dict[str, Any] = {}
        for spec in specs:
            entry = dict(ctx.natives[spec.name])
            proxy = entry.pop(PROXY_KEY, None)
            if proxy:
                entry = {"description": entry.pop("description", spec.name),
                         "entrypoint": [dollars_doubled(w) for w in inline_argv(proxy)],
                         **entry}
            processes[spec.name] = entry
        document = {"version": VERSION, "processes": processes}
        header = ("# Generated by procmgmt (-P process-compose). Run it with:\n"
                  f"#   process-compose -f {DOCUMENT} up\n")
        return [File(DOCUMENT, header + yamlout.dump(document))]

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """Readiness declarations the exec probe's sh check cannot express
        (a log pattern outside the grep -E subset), and NUL characters."""
        rows: list[tuple[str, str, str]] = []
        for spec in specs:
            rows += liveness.native_problems(spec)
            if _probed(spec):
                rows += ready.spec_problems(spec)
            words = [spec.foreground or "", *spec.foreground_args, spec.daemon or "",
                     *spec.daemon_args]
            if any("\0" in w for w in words):
                rows.append((spec.name, "args", "contains a NUL character, which no "
                             "program can receive as an argument"))
        return ctx.problems(rows)

    def activator(self, settings: Settings) -> Activator:
        """procmgmt does not run process-compose: say how to run the export."""
        raise UsageError("-P process-compose is an export: write it with 'procmgmt generate "
                         f"-P process-compose MODEL -o OUT' and run 'process-compose -f "
                         f"OUT/{DOCUMENT} up'")
