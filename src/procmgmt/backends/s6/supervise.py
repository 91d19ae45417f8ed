"""What s6-supervise keeps in ``supervise/``, read directly instead of through s6's tools.

A status, a no-op switch and every start probe used to run ``s6-svstat``,
``s6-svdt`` and ``s6-svok`` once per process (a fork and exec each: about
28 ms per process for a no-op switch under load, so the time grew faster
than N). The files those tools read are small and their formats fixed per
s6 version, so procmgmt reads them itself:

- ``supervise/status``: s6-supervise's status record (``s6_svstatus_pack``).
  From s6 2.11 on (and again from 2.14 on) it is 35 bytes: TAI64N timestamps
  of the last up/down change (0-11) and of readiness (12-23), the pid
  (24-31, big-endian, 0 when nothing runs), the wait status of the last
  death (32-33, big-endian) and a flag byte (34: 1 paused, 2 running
  ``./finish``, 4 wanted up, 8 ready). s6 2.13 inserted the process group
  (8 bytes) after the pid: 43 bytes, the wait status at 40 and the flags at
  42. s6 2.2 to 2.10 also wrote 35 bytes but with the flags shifted (4 an
  unused "want" bit, 8 wanted up, 16 ready), so a 35-byte record is decoded
  only when the installed s6 is 2.11 or later (:func:`direct_read`).
- ``supervise/death_tally``: one 14-byte record per death s6-supervise
  remembers (``s6_dtally_pack``): only their number is used.
- ``supervise/control``: the FIFO s6-supervise reads commands from. It holds
  it open for reading as long as it runs, so opening it for writing without
  blocking succeeds exactly when a supervisor listens: the test ``s6-svc``
  itself makes before it writes a command. :func:`send` then writes the
  command letters as ``s6-svc`` does (``s6_svc_write``): the same bytes,
  without a fork and exec of ``s6-svc`` per process and command (s6 2.11's
  ``s6-svc`` takes one service directory per call, so they cannot be batched;
  they were the largest item in the profile of a start or stop of 1,000).

What is read means what s6-svstat prints for the same record
(``-o up,ready,pid,wantedup,exitcode,signal``): up when there is a pid and
``./finish`` is not running, ready only with a pid, an exit code or a signal
only when not up. tests/backends/test_s6_supervise.py compares the two on
records a real s6-supervise wrote.

Root safety: the files lie in a service directory procmgmt made (the
deployer's, mode 0755, in a scan dir nobody else can write: docs/security.md)
and in the ``supervise/`` directory s6-supervise creates there (mode 0700).
The reads still follow no symlink in the last component and never block (a
FIFO planted where a file belongs is refused, not waited on).
"""

from __future__ import annotations

import functools
import os
import signal
import stat
from dataclasses import dataclass

from procmgmt.backends.s6 import svscan
from procmgmt.backends.shared import supervise_dir

#: Size of one death tally record (TAI64N label, exit code, signal).
DTALLY_RECORD = 14
#: s6's cap on remembered deaths (``S6_MAX_DEATH_TALLY``).
MAX_DEATH_TALLY = 4096
#: Flag bits of the status record (s6 2.11 and later).
_PAUSED, _FINISHING, _WANTUP, _READY = 1, 2, 4, 8
#: Record size -> (offset of the wait status, offset of the flag byte).
_LAYOUTS = {35: (32, 34), 43: (40, 42)}


@dataclass(frozen=True)
class SuperviseStatus:
    """One decoded ``supervise/status`` record."""

    pid: int
    wstat: int
    paused: bool
    finishing: bool
    wanted_up: bool
    ready_flag: bool

    @property
    def up(self) -> bool:
        """The service runs: a pid, and it is not the pid of ``./finish``."""
        return self.pid > 0 and not self.finishing

    @property
    def ready(self) -> bool:
        """Up and reported ready (s6-svstat's ``ready``: the flag counts only with a pid)."""
        return self.pid > 0 and self.ready_flag

    @property
    def exitcode(self) -> int | None:
        """The last death's exit code, when it exited (not when up, not when killed)."""
        if self.up or not os.WIFEXITED(self.wstat):
            return None
        return os.WEXITSTATUS(self.wstat)

    @property
    def signal(self) -> str | None:
        """The signal that killed it last (``SIGTERM``), when not up."""
        if self.up or not os.WIFSIGNALED(self.wstat):
            return None
        num = os.WTERMSIG(self.wstat)
        try:
            return signal.Signals(num).name
        except ValueError:
            return f"SIG{num}"


def decode(record: bytes) -> SuperviseStatus | None:
    """A status record of s6 2.11 or later (35 bytes; 43 for s6 2.13); None for
    any other size (a file being written, or a layout procmgmt does not know)."""
    layout = _LAYOUTS.get(len(record))
    if layout is None:
        return None
    at_wstat, at_flags = layout
    flags = record[at_flags]
    return SuperviseStatus(
        pid=int.from_bytes(record[24:32], "big"),
        wstat=int.from_bytes(record[at_wstat:at_wstat + 2], "big"),
        paused=bool(flags & _PAUSED), finishing=bool(flags & _FINISHING),
        wanted_up=bool(flags & _WANTUP), ready_flag=bool(flags & _READY))


@functools.cache
def direct_read() -> bool:
    """Whether the installed s6 writes the record :func:`decode` knows: s6 2.11
    brought ``s6-svlink`` along with the flag layout decoded here, so without it
    (s6 2.10 or older) the callers ask ``s6-svstat`` instead."""
    return os.access(svscan.tool("s6-svlink"), os.X_OK)


def read_status(service_dir: str) -> SuperviseStatus | None:
    """The status record of ``service_dir``; None when there is none (never
    supervised) or it cannot be decoded."""
    record = supervise_dir.read_regular(os.path.join(service_dir, "supervise", "status"), 64)
    return None if record is None else decode(record)


def death_count(service_dir: str) -> int:
    """How many deaths s6-supervise remembers (the lines ``s6-svdt`` prints): the
    file's size in records, 0 when it is missing or not a whole number of them
    (s6-svdt then empties it; reading leaves it alone)."""
    try:
        st = os.stat(os.path.join(service_dir, "supervise", "death_tally"),
                     follow_symlinks=False)
    except OSError:
        return 0
    if not stat.S_ISREG(st.st_mode) or st.st_size % DTALLY_RECORD:
        return 0
    return min(st.st_size // DTALLY_RECORD, MAX_DEATH_TALLY)


#: Write s6-svc's letters (``u``, ``d``, ``x``...) to the supervisor of a service
#: directory; False when none listens (the caller retries, as after a failed s6-svc).
send = supervise_dir.send


def supervised(service_dir: str) -> bool:
    """An s6-supervise listens on ``service_dir``'s control FIFO (what ``s6-svc``
    checks before writing a command)."""
    fd = supervise_dir.open_control(service_dir)
    if fd is None:
        return False
    os.close(fd)
    return True
