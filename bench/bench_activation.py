"""Benchmark 2: start and stop N trivial processes (``/bin/sleep 100000``).

Three ways, in the same run, on the same machine state:

- **procmgmt**: the sysvinit backend through procmgmt's own engine (parallel,
  each process checked alive 0.2 s after its start). Start = ``switch`` to the
  built generation until it returns; stop = ``switch`` to the empty generation
  until it returns *and* every sleep is gone from /proc.
- **s6-svscan**: one service dir per process, ``-c`` twice N; start = launch
  until every ``supervise/status`` names a pid; stop = ``s6-svscanctl -t``
  until the whole tree is gone.
- **LSB loop** (the original's way): the very same generated init scripts run
  one after another by a shell loop (``start``, then ``stop`` in reverse).

The build of the generation (evaluation, rendering, store) is not part of
"start": the peers' service dirs are written before their clock starts too.
"""

from __future__ import annotations

import os
import subprocess
import time

from bench import _model as mdl
from bench import _procmgmt as pm
from bench import _s6
from bench import _util as u

NAME = "activation"
SIZES = {"quick": (10,), "full": (100, 1000)}
LOOP = 'for s in "$@"; do "$s" "$0" >/dev/null 2>&1 || exit 1; done'


def _procmgmt(n: int) -> dict[str, float]:
    tag = u.new_tag("act")
    with u.workdir("act") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), "sysvinit"))
        gen, t_build = dep.build(model)
        empty, _ = dep.build(None)
        res, t_start = dep.switch_to(gen)
        pids = u.tagged_pids(tag, "sleep")
        assert len(pids) == n and len(res.started) == n, (len(pids), len(res.started))
        t0 = time.monotonic()
        dep.switch_to(empty)
        t_stop = u.wait_gone(pids, 60) - t0
        return {"start": t_start, "stop": t_stop, "build": t_build}


def _lsb_loop(n: int) -> dict[str, float]:
    tag = u.new_tag("lsb")
    with u.workdir("lsb") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), "sysvinit"))
        gen, _ = dep.build(model)
        scripts = [os.path.join(p.path, str(p.extra["script"])) for p in gen.processes]
        # The scripts' own crash check (0.5 s each) off: the original's scripts had none.
        env = {**os.environ, "PROCMGMT_START_GRACE": "0"}
        t0 = time.monotonic()
        subprocess.run(["/bin/sh", "-c", LOOP, "start", *scripts], env=env, check=True,
                       timeout=600)
        t_start = time.monotonic() - t0
        # Without the grace a script returns once its daemon is forked: the last
        # ones may not have become "sleep" yet (not counted in t_start).
        deadline = time.monotonic() + 30
        pids = u.tagged_pids(tag, "sleep")
        while len(pids) < n and time.monotonic() < deadline:
            time.sleep(0.02)
            pids = u.tagged_pids(tag, "sleep")
        assert len(pids) == n, len(pids)
        t0 = time.monotonic()
        subprocess.run(["/bin/sh", "-c", LOOP, "stop", *reversed(scripts)], env=env,
                       check=True, timeout=900)
        t_stop = u.wait_gone(pids, 60) - t0
        return {"start": t_start, "stop": t_stop}


def _s6_run(n: int) -> dict[str, float]:
    tag = u.new_tag("s6")
    with u.workdir("s6") as d, u.cleanup(tag):
        s6 = _s6.S6(d, tag, {f"p{i:05d}": "/bin/sleep 100000" for i in range(n)})
        try:
            t0 = time.monotonic()
            s6.start()
            t_start = s6.wait_up(60) - t0
            pids = u.tagged_pids(tag)
            assert len([p for p in pids if _comm(p) == "sleep"]) == n
            t0 = time.monotonic()
            s6.stop()
            t_stop = u.wait_gone(pids, 60) - t0
        except BaseException:
            s6.kill()
            raise
        return {"start": t_start, "stop": t_stop}


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def run(mode: str) -> list[u.Row]:
    """procmgmt vs s6 vs the sequential LSB loop, per size."""
    rows: list[u.Row] = []
    series: dict[str, list[float]] = {}
    sizes = SIZES[mode]
    for n in sizes:
        ours = _procmgmt(n)
        peer = _s6_run(n) if _s6.available() else None
        lsb = _lsb_loop(n)
        for phase in ("start", "stop"):
            series.setdefault(f"procmgmt {phase}", []).append(ours[phase])
            big = n == 1000
            if phase == "start":
                ok = (ours[phase] <= 2.0 and (peer is None or ours[phase] <= 1.3 * peer[phase])) \
                    if big else None
                target = "<= 2.0 s and <= 1.3 x s6" if big else None
            else:
                ok = ours[phase] <= 1.5 if big else None
                target = "<= 1.5 s" if big else None
            rows.append(u.Row(NAME, f"procmgmt sysvinit parallel {phase}", n, ours[phase],
                              ratio=(ours[phase] / peer[phase]) if peer else None,
                              ratio_to="s6" if peer else None, target=target, met=ok,
                              extra={"build_untimed": round(ours["build"], 3)}
                              if phase == "start" else {}))
            if peer:
                rows.append(u.Row(NAME, f"s6-svscan {phase}", n, peer[phase], ratio=1.0,
                                  ratio_to="s6"))
                series.setdefault(f"s6 {phase}", []).append(peer[phase])
            rows.append(u.Row(NAME, f"LSB scripts one after another {phase}", n, lsb[phase],
                              ratio=lsb[phase] / ours[phase], ratio_to="procmgmt"))
            series.setdefault(f"lsb {phase}", []).append(lsb[phase])
    if len(sizes) > 1:
        for key, ts in series.items():
            exp = u.fit_exponent(sizes, ts)
            rows.append(u.Row(NAME, f"scaling exponent {key}", None,
                              extra={"exponent": None if exp is None else round(exp, 3)}))
    return rows
