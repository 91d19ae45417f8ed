"""The supervisord activator's request batching (control.Batcher), against a fake
server: calls queued together go out in one ``system.multicall``, each caller
gets its own answer or fault, a failed request fails every call it carried,
and the sender thread is gone once the queue is empty."""

from __future__ import annotations

import threading
import time
import xmlrpc.client
from typing import Any

import pytest

from procmgmt.backends.supervisord import control


class FakeServer:
    """Records every multicall; answers per method like supervisord does."""

    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.gate = gate
        self.fail = fail
        self.system = self

    def multicall(self, calls: list[dict[str, Any]]) -> list[Any]:
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise ConnectionRefusedError(111, "Connection refused")
        self.batches.append([str(c["params"][0]) for c in calls])
        out: list[Any] = []
        for c in calls:
            if c["params"][0] == "missing":
                out.append({"faultCode": control.FAULT_BAD_NAME,
                            "faultString": "BAD_NAME: missing"})
            else:
                out.append([True])
        return out


def _wait_idle(b: control.Batcher) -> None:
    deadline = time.monotonic() + 5
    while any(t.name == "supervisord-batch" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the sender thread stayed"
        time.sleep(0.01)


def test_calls_queued_while_one_is_sent_go_out_together() -> None:
    gate = threading.Event()
    server = FakeServer(gate)
    b = control.Batcher(lambda: server, linger=0)
    first = b.submit("supervisor.stopProcess", "a", False)
    time.sleep(0.05)  # the first multicall is on its way, held by the gate
    rest = [b.submit("supervisor.stopProcess", n, False) for n in ("b", "c", "d")]
    gate.set()
    assert first.result(5) is True and all(c.result(5) is True for c in rest)
    assert server.batches == [["a"], ["b", "c", "d"]]
    assert first.answered_at <= rest[0].answered_at < float("inf")
    _wait_idle(b)


def test_a_fault_reaches_its_own_caller_only() -> None:
    server = FakeServer()
    b = control.Batcher(lambda: server, linger=0.05)
    ok = b.submit("supervisor.removeProcessGroup", "x")
    bad = b.submit("supervisor.removeProcessGroup", "missing")
    assert ok.result(5) is True
    with pytest.raises(xmlrpc.client.Fault) as info:
        bad.result(5)
    assert info.value.faultCode == control.FAULT_BAD_NAME
    assert server.batches == [["x", "missing"]]  # the linger gathered both
    _wait_idle(b)


def test_a_failed_request_fails_every_call_it_carried() -> None:
    b = control.Batcher(lambda: FakeServer(fail=True), linger=0.05)
    calls = [b.submit("supervisor.stopProcess", n, False) for n in ("a", "b")]
    for c in calls:
        with pytest.raises(ConnectionRefusedError):
            c.result(5)
    _wait_idle(b)
