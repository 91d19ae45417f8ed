"""Benchmark 5: readiness-gated activation.

- **DAG**: N processes in 5 levels, each depending on one or two of the level
  above; every process prints ``ready`` 200 ms after it starts and declares
  a log-line readiness check. The critical path cannot be shorter than
  levels x 200 ms; procmgmt (parallel) is compared with that bound and with
  the same model under ``--sequential`` (the original's one-at-a-time order).
- **TCP**: N independent Python listeners on 127.0.0.1, each declaring a TCP
  readiness check: time until ``switch`` returns (every port accepts), and
  s6-svscan with the same listeners until every port accepts (probed every
  10 ms), same run.

Targets (issue 16): the parallel DAG within 1.10 x its critical path, and the
TCP listeners ready no later than under s6-svscan (<= 1.0 x).
"""

from __future__ import annotations

import os
import socket
import time

from bench import _model as mdl
from bench import _procmgmt as pm
from bench import _s6
from bench import _util as u
from procmgmt.deploy.options import DEFAULT_MAX_PARALLEL

NAME = "readiness"
SIZES = {"quick": ((10, 2), 10), "full": ((100, 5), 100)}
DELAY = 0.2
DAG_COMMAND = ["/bin/sh", "-c", f"sleep {DELAY}; echo ready; exec /bin/sleep 100000"]
LISTENER = ("import socket,sys\n"
            "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(16)\n"
            "while True: s.accept()[0].close()\n")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
#: Targets: the DAG over its critical path, procmgmt's TCP case over s6-svscan's.
DAG_TARGET = 1.10
TCP_TARGET = 1.0


def _dag(n: int, levels: int, parallel: bool) -> float:
    tag = u.new_tag("dag")
    with u.workdir("dag") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag, command=DAG_COMMAND,
                                shape="levels", levels=levels, readiness="log")
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), "sysvinit"),
                          max_parallel=DEFAULT_MAX_PARALLEL if parallel else 1)
        gen, _ = dep.build(model)
        assert max(p.rank for p in gen.processes) == levels - 1
        try:
            res, t = dep.switch_to(gen)
            assert len(res.started) == n
        finally:
            dep.switch(None)
        return t


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tcp_procmgmt(n: int) -> float:
    tag = u.new_tag("tcp")
    base = u.free_port_block(n)
    with u.workdir("tcp") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag,
                                command=[PYTHON, "-c", LISTENER, "@PORT@"], readiness="tcp",
                                port_base=base)
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), "sysvinit"))
        gen, _ = dep.build(model)
        try:
            _, t = dep.switch_to(gen)
            assert all(_accepting(base + i) for i in range(n))
        finally:
            dep.switch(None)
        return t


def _tcp_s6(n: int) -> float:
    tag = u.new_tag("s6tcp")
    base = u.free_port_block(n)
    code = LISTENER.replace("\n", "; ").replace("; while", "\nwhile")
    with u.workdir("s6tcp") as d, u.cleanup(tag):
        script = os.path.join(d, "listener.py")
        with open(script, "w") as f:
            f.write(code)
        s6 = _s6.S6(os.path.join(d, "svc"), tag,
                    {f"p{i:05d}": f"{PYTHON} {script} {base + i}" for i in range(n)})
        try:
            pending = set(range(base, base + n))
            t0 = time.monotonic()
            s6.start()

            def all_accept() -> bool:
                for port in list(pending):
                    if _accepting(port):
                        pending.discard(port)
                return not pending

            t = u.wait_until(all_accept, 60, 0.01, "all ports accept") - t0
            pids = u.tagged_pids(tag)
            s6.stop()
            u.wait_gone(pids, 30)
        except BaseException:
            s6.kill()
            raise
        return t


def run(mode: str) -> list[u.Row]:
    """DAG (parallel vs bound vs sequential) and TCP listeners (procmgmt vs s6)."""
    (n, levels), n_tcp = SIZES[mode]
    bound = levels * DELAY
    par = _dag(n, levels, True)
    seq = _dag(n, levels, False)
    rows = [
        u.Row(NAME, f"DAG {levels} levels, ready {DELAY:g} s after start: parallel", n, par,
              ratio=par / bound, ratio_to=f"critical path {bound:g} s",
              target=f"<= {DAG_TARGET:.2f} x", met=par / bound <= DAG_TARGET),
        u.Row(NAME, f"DAG {levels} levels: --sequential (the original's order)", n, seq,
              ratio=seq / bound, ratio_to=f"critical path {bound:g} s",
              extra={"sequential_over_parallel": round(seq / par, 2)}),
    ]
    ours = _tcp_procmgmt(n_tcp)
    peer = _tcp_s6(n_tcp) if _s6.available() else None
    rows.append(u.Row(NAME, "TCP listeners until all accept: procmgmt", n_tcp, ours,
                      ratio=ours / peer if peer else None, ratio_to="s6" if peer else None,
                      target=f"<= {TCP_TARGET:.1f} x s6",
                      met=ours / peer <= TCP_TARGET if peer and n_tcp >= 100 else None))
    if peer is not None:
        rows.append(u.Row(NAME, "TCP listeners until all accept: s6-svscan", n_tcp, peer,
                          ratio=1.0, ratio_to="s6"))
    return rows
