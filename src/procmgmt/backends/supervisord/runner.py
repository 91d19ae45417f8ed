"""``procmgmt run`` with supervisord: the profile's own supervisord in the foreground.

No generation switch and no engine: supervisord starts the programs itself
(priorities order the spawns, the proxies wait for readiness) and stops them
when ``procmgmt run`` is interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import xmlrpc.client

from procmgmt import fsutil
from procmgmt.backends.supervisord import embedded
from procmgmt.backends.supervisord.activator import SupervisordActivator
from procmgmt.backends.supervisord.external import EXTERNAL_CONF_ENV
from procmgmt.errors import DeployError, UsageError
from procmgmt.manifest import Generation
from procmgmt.settings import Settings


def run_stateless(settings: Settings, gen: Generation) -> int:
    """supervisord in the foreground with ``gen``'s programs until interrupted
    (SIGINT/SIGTERM are forwarded; supervisord stops its programs and exits)."""
    act = SupervisordActivator(settings)
    if act.external is not None:
        raise UsageError(f"'procmgmt run' starts a supervisord of its own; unset "
                         f"{EXTERNAL_CONF_ENV} (the profile's programs are in {act.conf})")
    if act.running() or act.profile_supervisords():
        raise UsageError(f"the supervisord of profile {settings.profile} is already "
                         "running; use another --profile or stop it first")
    act.write_base_config(len(gen.processes), nodaemon=True)
    act.link(gen)
    # Own session: a terminal's Ctrl-C reaches only us, and we stop the programs
    # first (supervisord's own shutdown with programs running is slow).
    child = subprocess.Popen(embedded.command(act.conf, nodaemon=True),
                             env=embedded.environment(), stdin=subprocess.DEVNULL,
                             start_new_session=True, umask=fsutil.SERVICE_UMASK)

    def forward(signum: int, frame: object) -> None:
        try:
            act.shutdown()
        except (OSError, DeployError, xmlrpc.client.Fault, xmlrpc.client.ProtocolError):
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)
        if child.poll() is None and not act.running():
            # Not answering (e.g. still in its first spawn pass): plain signal.
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
