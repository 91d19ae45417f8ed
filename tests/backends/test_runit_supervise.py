"""runsv's status record and control FIFO (procmgmt.backends.runit.supervise).

The record is packed here as runit 2.1.2's ``update_status`` writes it; the
end-to-end runit tests (tests/backends/test_runit.py) read records a real
runsv wrote through the activator's status, start and stop probes.
"""

from __future__ import annotations

import os
from pathlib import Path

from procmgmt.backends.runit import supervise


def pack(seconds: int, pid: int, want: str, state: int) -> bytes:
    """A status record: TAI64N label, pid (little-endian), paused, want, term, state."""
    label = (seconds + 2**62 + 10).to_bytes(8, "big") + (500_000_000).to_bytes(4, "big")
    return label + pid.to_bytes(4, "little") + bytes([0, ord(want), 0, state])


def test_decode_record() -> None:
    """State, pid, what is wanted and when it changed; anything but 20 bytes is no record."""
    rec = supervise.decode(pack(1_700_000_000, 4242, "u", 1))
    assert rec == supervise.Record("run", 4242, "u", 1_700_000_000.5)
    down = supervise.decode(pack(1_700_000_000, 0, "d", 0))
    assert down is not None and (down.state, down.pid, down.want) == ("down", None, "d")
    finishing = supervise.decode(pack(0, 7, "u", 2))
    assert finishing is not None and finishing.state == "finish"
    assert supervise.decode(pack(0, 7, "u", 2)[:19]) is None


def test_no_runsv_no_record_no_command(tmp_path: Path) -> None:
    """A missing directory, a FIFO where the record belongs, a control FIFO nobody
    reads, a symlinked control: no record, nothing sent, nothing blocks."""
    assert supervise.read(str(tmp_path / "missing")) is None
    assert not supervise.send(str(tmp_path / "missing"), "d")
    (tmp_path / "supervise").mkdir()
    os.mkfifo(tmp_path / "supervise" / "status")
    assert supervise.read(str(tmp_path)) is None
    os.mkfifo(tmp_path / "supervise" / "control")
    assert not supervise.send(str(tmp_path), "d")
    os.unlink(tmp_path / "supervise" / "control")
    (tmp_path / "elsewhere").mkdir()
    os.mkfifo(tmp_path / "elsewhere" / "fifo")
    os.symlink(tmp_path / "elsewhere" / "fifo", tmp_path / "supervise" / "control")
    assert not supervise.send(str(tmp_path), "d")
