"""Find processes of a deployment that no deployed process explains.

Every process procmgmt starts carries ``PROCMGMT_DEPLOYMENT=<state dir>:<profile>``
in its environment (inherited by its children). A server that rewrites its
process title over that memory (nginx's setproctitle zeroes all of it) carries
the marker in its command line instead (nginx: ``-g 'env PROCMGMT_...=...;'``),
which the title repeats. A process with the marker
is *explained* when it is a deployed process (the PID its manager reports
or its pid file names), a descendant of one, or in the process group of
one. Anything else is a stray: left over by a crash, a manager killed with
-9, or a daemon that escaped its wrapper. Linux /proc only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass

from procmgmt.backends.base import Activator
from procmgmt.manifest import Generation
from procmgmt.pids import (
    MARKER_DEPLOYMENT,
    MARKER_PROCESS,
    cmdline_marker,
    expected_uid,
    pid_alive,
    protected_pids,
    report,
    stat_fields,
    trusted_pid,
)
from procmgmt.settings import Settings
from procmgmt.validate import deployment_id


@dataclass(frozen=True)
class Stray:
    """A marked process nothing deployed explains."""

    pid: int
    process: str
    cmdline: str


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of ``pid``."""
    fields = stat_fields(pid)
    return None if fields is None else (int(fields[1]), int(fields[2]))


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


#: Bytes that end a ``NAME=value`` word in a command line or process title.
def marked_processes(settings: Settings) -> dict[int, str]:
    """pid -> process name of every live process carrying this deployment's marker
    (in its environment, else in its command line)."""
    want = deployment_id(settings)
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        pid = int(entry)
        env = _environ(pid)
        if MARKER_DEPLOYMENT in env:
            name = env.get(MARKER_PROCESS, "?") if env[MARKER_DEPLOYMENT] == want else None
        else:
            name = cmdline_marker(pid, want)
        if name is not None and pid_alive(pid):
            found[pid] = name
    return found


def store_commands(settings: Settings) -> list[int]:
    """PIDs of live processes running a program from this state dir's store.

    Those are start/stop scripts (sysvinit, BSD rc) run by a switch: the
    processes they start run the model's own commands, never a store path.
    After a crashed switch, they are the starts and stops it left in flight.
    """
    prefix = os.path.join(settings.store_dir, "")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")[:2]
        except OSError:
            continue
        if any(a.decode(errors="replace").startswith(prefix) for a in argv) \
                and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def find_strays(settings: Settings, gen: Generation | None,
                act: Activator | None) -> list[Stray]:
    """Marked processes that the deployed generation does not explain."""
    marked = marked_processes(settings)
    roots: set[int] = set()
    if gen is not None and act is not None:
        for p in gen.processes:
            status = act.status(gen, p)
            if status.pid:
                roots.add(status.pid)
            if p.pid_file:
                verdict = report(trusted_pid(p.pid_file, expected_uid(p.user),
                                             deployment_id(settings), process=p.name))
                if verdict.trusted and verdict.pid is not None:
                    roots.add(verdict.pid)
    groups = {s[1] for r in roots if (s := _stat(r)) is not None and s[1] == r}
    strays = []
    for pid, name in sorted(marked.items()):
        if pid in roots:
            continue
        st = _stat(pid)
        if st is None or not pid_alive(pid):
            continue  # gone since the scan (a deployed process's short-lived child)
        if st[1] in groups:
            continue
        # Descendant of a deployed process?
        cur, seen = pid, 0
        explained = False
        while st is not None and seen < 64:
            parent = st[0]
            if parent in roots:
                explained = True
                break
            if parent <= 1:
                break
            cur, seen = parent, seen + 1
            st = _stat(cur)
        if not explained:
            strays.append(Stray(pid, name, _cmdline(pid)))
    return strays


def stop_strays(strays: list[Stray], timeout: float = 10.0) -> list[int]:
    """SIGTERM each stray (its group when it leads one), SIGKILL what survives; PIDs left.
    Never PID 1, procmgmt or one of its ancestors (a marked shell that runs procmgmt),
    nor a pid whose command line is no longer the one found (gone, and reused)."""
    protected = protected_pids()
    # The same process still, not a reused pid: its command line as found.
    strays = [s for s in strays if s.pid not in protected and _cmdline(s.pid) == s.cmdline]
    for s in strays:
        st = _stat(s.pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if st is not None and st[1] == s.pid:
                os.killpg(s.pid, signal.SIGTERM)
            else:
                os.kill(s.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(s.pid) for s in strays):
        time.sleep(0.05)
    left = [s.pid for s in strays if pid_alive(s.pid)]
    for pid in left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    return [pid for pid in left if pid_alive(pid)]
