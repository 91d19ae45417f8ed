"""Benchmark: runit and s6 start (and stop) of N processes, procmgmt vs the same manager by hand.

For each manager, in the same run on the same machine state:

- **procmgmt**: the runit or s6 backend. Start = ``switch`` to the built
  generation (built untimed, as in ``activation``) until it returns and all
  N ``sleep`` run (a supervisor says up once it started the run script, which
  may not have exec'd the program yet), under procmgmt's own runsvdir or
  s6-svscan, which the switch starts. Stop = ``switch`` to the empty generation until it returns
  *and* every ``sleep`` is gone from /proc (the manager itself is stopped too).
- **hand-written, logged**: the service directories a person would write for
  the same job, renamed complete into a scan dir: ``run`` execs
  ``/bin/sleep`` with stderr joined to stdout, ``log/run`` execs the logger
  (``svlogd`` / ``s6-log`` into a directory per process), as procmgmt's
  generated directories always log. Start = launch runsvdir / s6-svscan
  until every ``supervise/status`` says up and all N ``sleep`` run; stop =
  SIGHUP to runsvdir / ``s6-svscanctl -t`` until every sleep is gone. The
  target compares with this peer.
- **hand-written, run only**: the same without loggers (half the supervised
  programs), for reference.

Full mode alternates procmgmt and the logged hand-written dirs three times and
reports the median of each (and every sample); quick mode runs each once.

Sizes: quick 10; full 1,000 for s6 and for runit. runsvdir 2.1.2 supervises
at most 1,000 service directories (``MAXSERVICES``; a directory holds the
service and its logger, one runsv), so 1,000 is also runit's largest N. Its
five-second rescan costs neither side here: procmgmt writes a first
deployment's directories before it starts runsvdir (dated back a second, so
the first look comes at once), as the hand-written peer does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from bench import _model as mdl
from bench import _procmgmt as pm
from bench import _runit, _s6
from bench import _util as u

NAME = "supervision"
SIZES = {"quick": (10,), "full": (1000,)}
#: Issue 16: start of 1,000 within 1.1 x the same manager with hand-written dirs.
TARGET = 1.1
#: procmgmt and the logged hand-written dirs alternate this many times; each row is
#: the median of its samples (one pair varied by +-0.1 in ratio from run to run).
ROUNDS = {"quick": 1, "full": 3}
SLEEP = "/bin/sleep 100000"


def _procmgmt(backend: str, n: int) -> dict[str, float]:
    tag = u.new_tag(f"sv{backend}")
    with u.workdir(f"sv{backend}") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), backend))
        gen, t_build = dep.build(model)
        empty, _ = dep.build(None)
        t0 = time.monotonic()
        try:
            res, _ = dep.switch_to(gen)
            t_up, pids = u.wait_count(tag, n, 60)
            t_start = t_up - t0
            assert len(pids) == n and len(res.started) == n, (len(pids), len(res.started))
        except BaseException:
            # The manager procmgmt started does not carry the tag: undeploy it.
            dep.switch_to(empty)
            raise
        t0 = time.monotonic()
        dep.switch_to(empty)
        t_stop = u.wait_gone(pids, 120) - t0
        return {"start": t_start, "stop": t_stop, "build": t_build}


def _by_hand(backend: str, n: int, logged: bool) -> dict[str, float]:
    tag = u.new_tag(f"hw{backend}")
    make: Callable[..., Any] = _s6.S6 if backend == "s6" else _runit.Runit
    with u.workdir(f"hw{backend}") as d, u.cleanup(tag):
        logs = os.path.join(d, "log") if logged else None
        peer = make(d, tag, {f"p{i:05d}": SLEEP for i in range(n)}, log_root=logs)
        try:
            t0 = time.monotonic()
            peer.start()
            peer.wait_up(120)
            t_up, pids = u.wait_count(tag, n, 60)
            t_start = t_up - t0
            assert len(pids) == n, (len(pids), n)
            t0 = time.monotonic()
            peer.stop()
            t_stop = u.wait_gone(pids, 120) - t0
        except BaseException:
            peer.kill()
            raise
        return {"start": t_start, "stop": t_stop}


def _available(backend: str) -> bool:
    return _s6.available() if backend == "s6" else _runit.available()


def run(mode: str) -> list[u.Row]:
    """Per manager and size: procmgmt, hand-written logged, hand-written run only."""
    rows: list[u.Row] = []
    for backend in ("runit", "s6"):
        if not _available(backend):
            continue
        manager = "s6-svscan" if backend == "s6" else "runsvdir"
        for n in SIZES[mode]:
            load = round(os.getloadavg()[0], 2)
            samples: dict[str, list[dict[str, float]]] = {"ours": [], "logged": []}
            for _ in range(ROUNDS[mode]):
                samples["ours"].append(_procmgmt(backend, n))
                samples["logged"].append(_by_hand(backend, n, logged=True))
            ours, logged = (u.median_of(samples[k]) for k in ("ours", "logged"))
            plain = _by_hand(backend, n, logged=False)
            for phase in ("start", "stop"):
                judged = phase == "start" and n == SIZES["full"][-1]
                ratio = ours[phase] / logged[phase]
                extra: dict[str, Any] = {"load": load,
                                         "vs_run_only": round(ours[phase] / plain[phase], 2)}
                if phase == "start":
                    extra["build_untimed"] = round(ours["build"], 3)
                if len(samples["ours"]) > 1:
                    extra["samples"] = [round(s[phase], 3) for s in samples["ours"]]
                    extra["peer_samples"] = [round(s[phase], 3) for s in samples["logged"]]
                rows.append(u.Row(NAME, f"procmgmt {backend} {phase}", n, ours[phase],
                                  ratio=ratio, ratio_to=f"{manager} by hand", extra=extra,
                                  target=f"<= {TARGET:g} x {manager} by hand" if judged
                                  else None,
                                  met=ratio <= TARGET if judged else None))
                rows.append(u.Row(NAME, f"{manager} hand-written dirs, logged {phase}", n,
                                  logged[phase], ratio=1.0, ratio_to=f"{manager} by hand"))
                rows.append(u.Row(NAME, f"{manager} hand-written dirs, run only {phase}", n,
                                  plain[phase], ratio=plain[phase] / logged[phase],
                                  ratio_to=f"{manager} by hand"))
    return rows
