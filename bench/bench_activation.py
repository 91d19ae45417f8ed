"""Benchmark 2: start and stop N trivial processes (``/bin/sleep 100000``).

Three ways, in the same run, on the same machine state:

- **procmgmt**: the sysvinit backend through procmgmt's own engine (parallel,
  each process checked alive 0.2 s after its start, the default start grace).
  Start = ``switch`` to the built generation until it returns; stop = ``switch``
  to the empty generation until it returns *and* every sleep is gone from /proc.
- **procmgmt, --start-grace 0**: the same, a process counted started once it
  runs. This is the like-for-like row: s6 counts a service up once
  ``supervise/status`` names a pid, and the loop runs the scripts with their own
  crash check off; neither waits 0.2 s to see a crash.
- **s6-svscan**: one service dir per process, ``-c`` twice N; start = launch
  until every ``supervise/status`` names a pid; stop = ``s6-svscanctl -t``
  until the whole tree is gone.
- **LSB loop** (the original's way): the very same generated init scripts run
  one after another by a shell loop (``start``, then ``stop`` in reverse).

The build of the generation (evaluation, rendering, store) is not part of
"start": the peers' service dirs are written before their clock starts too.
Besides wall time, the CPU seconds of procmgmt (engine and the scripts it
ran) and of the loop (the shell and its scripts) are recorded: CPU is what a
2-core machine runs out of, and it stays comparable when the load is not.

In full mode the four run three times, interleaved, and each row is the median
of its samples (all of them in the row's details).

Targets (issue 16): start of 100 <= 1.5 x s6, of 1,000 <= 1.2 x s6, both
faster than the loop; stop of 1,000 <= 1.3 x s6.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time

from bench import _model as mdl
from bench import _procmgmt as pm
from bench import _s6
from bench import _util as u

NAME = "activation"
SIZES = {"quick": (10,), "full": (100, 1000)}
#: The four ways run this many times, interleaved; each row is the median of its
#: samples (at 100 one sample varied by 20-40 ms, as much as the margins judged).
ROUNDS = {"quick": 1, "full": 3}
LOOP = 'for s in "$@"; do "$s" "$0" >/dev/null 2>&1 || exit 1; done'


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _procmgmt(n: int, start_grace: float | None = None) -> dict[str, float]:
    tag = u.new_tag("act")
    with u.workdir("act") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), "sysvinit"),
                          start_grace=start_grace)
        gen, t_build = dep.build(model)
        empty, _ = dep.build(None)
        cpu0 = _cpu()
        res, t_start = dep.switch_to(gen)
        cpu_start = _cpu() - cpu0
        assert len(res.started) == n, len(res.started)
        # With no start grace a process counts once it runs: the last ones may not
        # have become "sleep" yet (their wrapper still execs it; not timed).
        _, pids = u.wait_count(tag, n, 30)
        assert len(pids) == n, len(pids)
        t0, cpu0 = time.monotonic(), _cpu()
        dep.switch_to(empty)
        t_stop = u.wait_gone(pids, 60) - t0
        return {"start": t_start, "stop": t_stop, "build": t_build, "cpu_start": cpu_start,
                "cpu_stop": _cpu() - cpu0}


def _lsb_loop(n: int) -> dict[str, float]:
    tag = u.new_tag("lsb")
    with u.workdir("lsb") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), "sysvinit"))
        gen, _ = dep.build(model)
        scripts = [os.path.join(p.path, str(p.extra["script"])) for p in gen.processes]
        # The scripts' own crash check (0.5 s each) off: the original's scripts had none.
        env = {**os.environ, "PROCMGMT_START_GRACE": "0"}
        t0, cpu0 = time.monotonic(), _cpu()
        subprocess.run(["/bin/sh", "-c", LOOP, "start", *scripts], env=env, check=True,
                       timeout=600)
        t_start, cpu_start = time.monotonic() - t0, _cpu() - cpu0
        # Without the grace a script returns once its daemon is forked: the last
        # ones may not have become "sleep" yet (not counted in t_start).
        _, pids = u.wait_count(tag, n, 30)
        assert len(pids) == n, len(pids)
        t0, cpu0 = time.monotonic(), _cpu()
        subprocess.run(["/bin/sh", "-c", LOOP, "stop", *reversed(scripts)], env=env,
                       check=True, timeout=900)
        t_stop = u.wait_gone(pids, 60) - t0
        return {"start": t_start, "stop": t_stop, "cpu_start": cpu_start,
                "cpu_stop": _cpu() - cpu0}


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


#: (size, phase) -> the most times s6's a row may take, and whether it must beat the loop.
TARGETS = {(100, "start"): (1.5, True), (1000, "start"): (1.2, True), (1000, "stop"): (1.3, False)}


def _verdict(n: int, phase: str, ours: float, peer: float | None,
             lsb: float) -> tuple[str | None, bool | None]:
    """The issue's target for this row and whether it was met (None: no target)."""
    if (n, phase) not in TARGETS:
        return None, None
    factor, beat_loop = TARGETS[(n, phase)]
    text = f"<= {factor:g} x s6" + (", faster than the loop" if beat_loop else "")
    if peer is None:
        return text, None
    return text, ours <= factor * peer and (not beat_loop or ours < lsb)


def run(mode: str) -> list[u.Row]:
    """procmgmt (default grace and grace 0) vs s6 vs the sequential LSB loop, per size."""
    rows: list[u.Row] = []
    series: dict[str, list[float]] = {}
    sizes = SIZES[mode]
    for n in sizes:
        samples: dict[str, list[dict[str, float]]] = {"ours": [], "bare": [], "peer": [],
                                                      "lsb": []}
        for _ in range(ROUNDS[mode]):
            samples["ours"].append(_procmgmt(n))
            samples["bare"].append(_procmgmt(n, start_grace=0.0))
            if _s6.available():
                samples["peer"].append(_s6_run(n))
            samples["lsb"].append(_lsb_loop(n))
        ours, bare, lsb = (u.median_of(samples[k]) for k in ("ours", "bare", "lsb"))
        peer = u.median_of(samples["peer"]) if samples["peer"] else None
        for phase in ("start", "stop"):
            # Stopping does not depend on the grace: one row (the second run's stop
            # time goes with it as a second sample).
            runs = (("", ours), (", --start-grace 0", bare)) if phase == "start" else (("", ours),)
            for label, res in runs:
                target, ok = _verdict(n, phase, res[phase], peer[phase] if peer else None,
                                      lsb[phase])
                extra: dict[str, object] = {"cpu_s": round(res[f"cpu_{phase}"], 3)}
                if ROUNDS[mode] > 1:
                    which = "ours" if res is ours else "bare"
                    extra["samples"] = [round(s[phase], 3) for s in samples[which]]
                if phase == "start":
                    extra["build_untimed"] = round(res["build"], 3)
                else:
                    extra["second_sample"] = round(bare[phase], 3)
                rows.append(u.Row(NAME, f"procmgmt sysvinit parallel {phase}{label}", n,
                                  res[phase], ratio=(res[phase] / peer[phase]) if peer else None,
                                  ratio_to="s6" if peer else None, target=target, met=ok,
                                  extra=extra))
            series.setdefault(f"procmgmt {phase}", []).append(ours[phase])
            series.setdefault(f"procmgmt grace 0 {phase}", []).append(bare[phase])
            if peer:
                rows.append(u.Row(NAME, f"s6-svscan {phase}", n, peer[phase], ratio=1.0,
                                  ratio_to="s6", extra={"samples": [
                                      round(s[phase], 3) for s in samples["peer"]]}))
                series.setdefault(f"s6 {phase}", []).append(peer[phase])
            rows.append(u.Row(NAME, f"LSB scripts one after another {phase}", n, lsb[phase],
                              ratio=lsb[phase] / bare[phase], ratio_to="procmgmt grace 0",
                              extra={"cpu_s": round(lsb[f"cpu_{phase}"], 3), "samples": [
                                  round(s[phase], 3) for s in samples["lsb"]]}))
            series.setdefault(f"lsb {phase}", []).append(lsb[phase])
    if len(sizes) > 1:
        for key, ts in series.items():
            exp = u.fit_exponent(sizes, ts)
            rows.append(u.Row(NAME, f"scaling exponent {key}", None,
                              extra={"exponent": None if exp is None else round(exp, 3)}))
    return rows
