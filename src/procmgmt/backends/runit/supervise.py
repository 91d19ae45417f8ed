"""What runsv keeps in a service directory's ``supervise/``, read and written directly.

- ``supervise/status``: runsv's 20-byte record (runit 2.1.2 ``update_status``):
  bytes 0-11 the TAI64N label of the last change (big-endian seconds + 2^62
  + 10, then nanoseconds), 12-15 the pid (little-endian, 0 when nothing
  runs), 16 paused, 17 what is wanted (``u`` or ``d``), 18 whether TERM was
  sent, 19 the state (0 down, 1 run, 2 finish). One reader, :func:`read`,
  serves status, the crash probe of a start and the stop probe.
- ``supervise/control``: the FIFO runsv reads one-letter commands from
  (``sv`` writes them: ``d`` down, ``k`` kill, ``x`` exit). :func:`send`
  writes them the same way, without a fork and exec of ``sv`` per process.
- ``supervise/ok``: held open for reading by runsv, so opening it for writing
  without blocking succeeds exactly when a runsv supervises the directory
  (:func:`procmgmt.backends.runit.runsvdir.supervised`).

The files lie in a service directory procmgmt made (the deployer's, 0755,
docs/security.md) and in ``supervise/``, which runsv creates (0700); the
reads and writes still follow no symlink in the last component and never
block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from procmgmt.backends.shared import supervise_dir

#: supervise/status byte 19: what runsv is doing.
STATES = {0: "down", 1: "run", 2: "finish"}
#: TAI64 label of the Unix epoch as runit writes it (libtai's ``tai_unix``).
_TAI64_UNIX = 2**62 + 10
#: Size of the record.
RECORD_SIZE = 20


@dataclass(frozen=True)
class Record:
    """One decoded ``supervise/status``."""

    #: "down", "run", "finish" (or "unknown").
    state: str
    pid: int | None
    #: "u" or "d".
    want: str
    #: When the state last changed, as a Unix time.
    changed: float


def decode(record: bytes) -> Record | None:
    """A 20-byte record; None for any other size (none yet, or cut short)."""
    if len(record) != RECORD_SIZE:
        return None
    changed = (int.from_bytes(record[0:8], "big") - _TAI64_UNIX
               + int.from_bytes(record[8:12], "big") / 1e9)
    return Record(STATES.get(record[19], "unknown"),
                  int.from_bytes(record[12:16], "little") or None, chr(record[17]), changed)


def read(service_dir: str) -> Record | None:
    """The record of ``service_dir``; None when there is none (never supervised)."""
    raw = supervise_dir.read_regular(os.path.join(service_dir, "supervise", "status"), 64)
    return None if raw is None else decode(raw)


#: Write sv's letters to the runsv of a service directory; False when none reads them.
send = supervise_dir.send
