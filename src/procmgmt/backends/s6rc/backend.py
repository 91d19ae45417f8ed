"""s6-rc backend: translate a process into the native model of its s6-rc pipeline.

The native model is the s6 backend's (:class:`procmgmt.backends.s6.S6Backend`:
the shared foreground proxy in ``data/start``, the readiness probe in
``data/check``, the ``s6-log`` logger), so both backends run a process the
same way; what differs is who orders and starts: here s6-rc itself, from
``dependencies.d/`` (it starts a dependency first and, when it has a
``notification-fd``, waits for its readiness), so ``run`` has no waits.
A daemon-only process is a longrun too, under the proxy that wraps the
daemon: it stays supervised and logged, which a oneshot would not be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends.base import (
    SH_READINESS,
    Backend,
    BuildContext,
    Capabilities,
    Coverage,
    File,
    Lifecycle,
    Ordering,
    PidFiles,
    Privilege,
    ProcessMode,
    Support,
)
from procmgmt.backends.s6.backend import TIMEOUT_KILL_MS, S6Backend
from procmgmt.backends.s6rc import source
from procmgmt.backends.s6rc.activator import S6RcActivator
from procmgmt.backends.shared.proxy import DEFAULT_WAIT_TIMEOUT, PROXY_KEY, wraps_daemon
from procmgmt.errors import Problem
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings

#: Names s6-rc reserves (s6-rc-compile.html: "the reserved s6rc- and s6-rc- prefixes").
RESERVED_PREFIXES = ("s6rc-", "s6-rc-")
#: Milliseconds s6-rc waits for a stop after s6-supervise's SIGKILL deadline.
STOP_SLACK_MS = 5000
#: The s6 backend, whose native model, manifest facts and checks are reused.
S6 = S6Backend()


def timeout_up_ms(check: rd.Readiness | None) -> int:
    """``timeout-up``: the dependency wait of the other backends, or longer when the
    readiness check may take longer (s6-notifyoncheck gives up at its timeout)."""
    wait = DEFAULT_WAIT_TIMEOUT * 1000
    if check is None:
        return wait
    return max(wait, math.ceil(float(check.timeout) * 1000) + STOP_SLACK_MS)


class S6RcBackend(Backend):
    """Generates s6-rc-compile source directories; deploys with s6-rc-compile,
    s6-rc-init or s6-rc-update, and s6-rc."""

    name = "s6-rc"
    capabilities = Capabilities(
        prefers=ProcessMode.FOREGROUND,
        dependencies=Support.NATIVE,
        ordering=Ordering.EDGES,
        ordering_detail="dependencies.d/: s6-rc starts dependencies first (up and ready "
                        "when they have a notification-fd)",
        user_switching=Support.EMULATED,
        privileges=frozenset({Privilege.ROOT, Privilege.UNPRIVILEGED}),
        tested=Coverage.GENERATED,
        readiness=Support.NATIVE,
        readiness_kinds=SH_READINESS,
        pid_files=PidFiles.DAEMONS,
        # The source trees carry no finish script: only s6's own "always".
        lifecycle=Lifecycle(default_restart="always", restart_native=frozenset({"always"}),
                            default_stop_timeout=TIMEOUT_KILL_MS / 1000,
                            stop_timeout=Support.NATIVE, liveness=Support.EMULATED),
        notes="s6-rc is not packaged here: source trees are checked against "
              "s6-rc-compile's rules in Python and the activator's command plan "
              "(compile, init or update with a conversion file that restarts every "
              "changed service, change) runs against a recording fake; readiness as s6 "
              "(s6-notifyoncheck, notification-fd); each process is a pipeline with "
              "an s6-log logger",
    )

    def translate(self, spec: ProcessSpec, ctx: BuildContext) -> dict[str, Any]:
        """The s6 backend's native model, with s6-rc's dependencies and timeouts."""
        native = S6.translate(spec, ctx)
        native.pop("down", None)
        native["dependencies"] = sorted(native["dependencies"])
        native["timeout_up"] = timeout_up_ms(rd.from_json(native.get("check")))
        native["timeout_down"] = int(native["timeout_kill"]) + STOP_SLACK_MS
        return native

    def render(self, native: dict[str, Any], spec: ProcessSpec, ctx: BuildContext) -> list[File]:
        """The definition directories of the process and its logger."""
        return source.render(spec.name, native)

    def generation_files(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[File]:
        """The ``default`` bundle: every process (a producer depends on its logger,
        s6-rc-compile.c, so the loggers come up with them)."""
        return source.default_bundle(spec.name for spec in specs)

    def manifest_extra(self, native: dict[str, Any], spec: ProcessSpec,
                       ctx: BuildContext) -> dict[str, Any]:
        """The s6-rc names of the process and where its log is."""
        extra = S6.manifest_extra(native, spec, ctx)
        extra.pop("service_dir", None)
        extra["source_dir"] = source.SOURCE_DIR
        extra["services"] = [spec.name] + ([source.logger_name(spec.name)]
                                           if native.get("log") else [])
        extra["wraps_daemon"] = wraps_daemon(native.get(PROXY_KEY))
        return extra

    def validate(self, specs: Sequence[ProcessSpec], ctx: BuildContext) -> list[Problem]:
        """The s6 backend's problems, and names s6-rc cannot take: reserved
        prefixes, ``default``, and a process named like another's logger or pipeline."""
        problems = S6.validate(specs, ctx)
        taken = {spec.name for spec in specs}
        rows: list[tuple[str, str, str]] = []
        for spec in specs:
            if spec.name.startswith(RESERVED_PREFIXES):
                rows.append((spec.name, "name", "s6-rc reserves names starting with "
                             + " or ".join(RESERVED_PREFIXES)))
            if spec.name == source.DEFAULT_BUNDLE:
                rows.append((spec.name, "name", "'default' is the bundle of every service"))
            for extra in source.service_names(spec.name)[1:]:
                if extra in taken:
                    rows.append((extra, "name", f"s6-rc names the logger or pipeline of "
                                 f"{spec.name!r} {extra!r}: rename one of them"))
        return problems + ctx.problems(rows)

    def activator(self, settings: Settings) -> S6RcActivator:
        """s6-rc's tools through the command runner; one live dir per profile."""
        return S6RcActivator(settings)
