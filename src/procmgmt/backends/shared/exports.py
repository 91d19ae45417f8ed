"""What the process-compose and Kubernetes exports share.

Both write one document for a whole generation that another program runs;
neither can run a program that daemonizes, run ``initialize`` first, or set
a umask or a nice level. Both therefore start such a process through the
foreground proxy (:mod:`procmgmt.backends.shared.proxy`), inlined as
``/bin/sh -c SCRIPT NAME`` because a single document cannot ship a script
file. Both probe readiness by repeating a check themselves, so a check they
cannot express natively becomes an exec probe: the shared sh probe of
:mod:`procmgmt.backends.shared.ready`, run once per period.
"""

from __future__ import annotations

import math
from typing import Any

from procmgmt import readiness as rd
from procmgmt.backends._shell import shell_file
from procmgmt.backends.base import BuildContext
from procmgmt.backends.shared import ready
from procmgmt.backends.shared.proxy import (
    DEFAULT_WAIT_TIMEOUT,
    generate,
    options_from_native,
    proxy_params,
)
from procmgmt.model.spec import ProcessSpec

#: Runs one probe and exits with its verdict (sh/ready_once.sh).
_ONCE = shell_file("procmgmt.backends.shared", "sh/ready_once.sh")

#: Seconds one TCP or HTTP probe may take (the sh probes' own bound).
PROBE_SECONDS = ready.PROBE_TIMEOUT


def dollars_doubled(text: str) -> str:
    """``text`` with every ``$`` written ``$$``: both readers turn ``$$`` into ``$``
    (process-compose's variable substitution of the whole file, Kubernetes'
    ``$(VAR)`` expansion of a container's command, args and env values), so a
    ``$`` of the model reaches the process as a ``$`` and never names a variable."""
    return text.replace("$", "$$")


def probe_script(check: rd.Readiness, *, pid_file: str | None, offset_file: str = "") -> str:
    """An sh script that probes ``check`` once: exit 0 when ready, else 1 with the
    reason on stderr. ``offset_file`` is where the proxy recorded a LogLine
    log's size at start (only later lines count)."""
    call = ready.check_call(check, pid_file=pid_file, offset_file=offset_file)
    return ready.library([check]) + _ONCE + "procmgmt_ready_once " + call + "\n"


def probe_timing(check: rd.Readiness) -> tuple[int, int, int]:
    """(period, seconds one probe may take, failures before giving up) in whole
    seconds, the units both managers take: the model's interval (at least 1 s),
    and as many periods as fit in its timeout."""
    period = max(1, math.ceil(check.interval))
    each = (max(1, math.ceil(check.timeout)) if isinstance(check, rd.Command)
            else PROBE_SECONDS)
    failures = max(1, math.ceil(check.timeout / period))
    return period, each, failures


def whole_seconds(seconds: float) -> int:
    """A duration in the whole seconds the managers take, rounded up (never 0)."""
    return max(1, math.ceil(seconds))


def needs_proxy(spec: ProcessSpec) -> bool:
    """True when neither manager can run ``spec`` as it is: it only daemonizes,
    has an ``initialize`` snippet, a umask or a nice level."""
    return (spec.foreground is None or bool(spec.initialize.strip())
            or spec.umask is not None or spec.nice is not None)


def proxy_native(spec: ProcessSpec, ctx: BuildContext, *, user: str | None = None,
                 write_pid_file: bool = False, record_log_offset: bool = False,
                 wait_ready: dict[str, Any] | None = None) -> dict[str, Any]:
    """The proxy's parameters (``ProxyOptions`` as plain data, patched by overrides):
    ``user`` to drop to after ``initialize``, the pid file written for a PidFile
    check of a foreground process, the log size recorded for a LogLine check,
    ``wait_ready`` for dependencies to pass their checks first."""
    settings = ctx.settings
    wrap = spec.foreground is None
    check = spec.readiness
    write_pid = write_pid_file and not wrap
    return {
        **proxy_params(spec, settings, write_pid=write_pid, user=user),
        "wait_for": {},
        "wait_timeout": DEFAULT_WAIT_TIMEOUT,
        "wait_ready": wait_ready or {},
        "record_log_offset": ({check.path: ready.log_offset_file(spec, settings)}
                              if record_log_offset and isinstance(check, rd.LogLine) else {}),
    }


def inline_argv(proxy: dict[str, Any]) -> list[str]:
    """The argv that runs the proxy without a script file: ``/bin/sh -c SCRIPT NAME``
    (``NAME`` becomes ``$0``, which names the process in ``ps`` and messages)."""
    opts = options_from_native(proxy)
    return ["/bin/sh", "-c", generate(opts), opts.name]
