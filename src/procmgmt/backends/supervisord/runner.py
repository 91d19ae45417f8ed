"""``procmgmt run`` with supervisord: the profile's own supervisord in the foreground.

No generation switch and no engine: supervisord starts the programs itself
(priorities order the spawns, the proxies wait for readiness) and stops them
when ``procmgmt run`` is interrupted.

What the terminal shows is the programs' output, each line prefixed with its
name (as ``procmgmt logs -f`` prints it, from the log files supervisord writes),
not supervisord's own log: supervisord runs ``--silent`` and keeps its own
messages in its log file, which is named when it exits with an error.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import xmlrpc.client

from procmgmt import fsutil
from procmgmt.backends.supervisord import embedded
from procmgmt.backends.supervisord.activator import SupervisordActivator
from procmgmt.backends.supervisord.external import EXTERNAL_CONF_ENV
from procmgmt.deploy.logs import Printer, stream
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
    child = subprocess.Popen([*embedded.command(act.conf, nodaemon=True), "--silent"],
                             env=embedded.environment(), stdin=subprocess.DEVNULL,
                             start_new_session=True, umask=fsutil.SERVICE_UMASK)
    done = threading.Event()
    output = threading.Thread(target=_show_output, args=(act, gen, done), daemon=True)
    output.start()

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
        code = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        done.set()
        output.join(timeout=5)
    if code != 0:
        print(f"procmgmt: supervisord exited with status {code}; its own log: "
              f"{act.log_file}", file=sys.stderr)
    return code


def _show_output(act: SupervisordActivator, gen: Generation, done: threading.Event) -> None:
    """Print every program's new output lines until ``done`` (then the last ones).

    Only what is written from now on: earlier runs' lines stay in the files."""
    sources = [(p.name, act.log_source(gen, p)) for p in gen.processes]
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    stream(sources, 0, True, Printer(sys.stdout, [n for n, _ in sources], colour), done)
