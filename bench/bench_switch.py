"""Benchmark 4: switches of a running deployment of N processes (sysvinit).

- no-op: the same model again -> 0 restarts;
- one changed: one instance's command differs -> exactly one restart;
- one added: N + 1 instances -> one start.

Each case reports the activation (``switch`` of the built generation) and,
separately, the build (evaluation, rendering, store lookups), since a user's
``procmgmt switch`` pays both. The build is measured twice in the same run:
first without the render cache (every process rendered: ``build_uncached``),
then as ``procmgmt switch`` builds (the cache renders only what changed);
``build_ratio`` is cached over uncached. The target of "one added" is on
build + switch.
"""

from __future__ import annotations

import os

from bench import _model as mdl
from bench import _procmgmt as pm
from bench import _util as u

NAME = "switch"
SIZES = {"quick": (10,), "full": (1000,)}


def run(mode: str) -> list[u.Row]:
    """Deploy N, then the three switches; undeploy; nothing left."""
    rows: list[u.Row] = []
    for n in SIZES[mode]:
        tag = u.new_tag("sw")
        with u.workdir("sw") as d, u.tagged_env(tag), u.cleanup(tag):
            dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), "sysvinit"))
            base = mdl.write_model(os.path.join(d, "base.py"), n, tag)
            changed = mdl.write_model(os.path.join(d, "changed.py"), n, tag,
                                      changed=(f"p{n // 2:05d}",))
            added = mdl.write_model(os.path.join(d, "added.py"), n + 1, tag,
                                    changed=(f"p{n // 2:05d}",))
            try:
                dep.switch(base)
                # (label, model, starts, stops, limit on the switch, limit on build + switch)
                cases = [("no-op switch", base, 0, 0, 1.0, None),
                         ("one instance changed", changed, 1, 1, None, None),
                         ("one instance added", added, 1, 0, None, 0.5)]
                for label, model, starts, stops, limit, total_limit in cases:
                    t_uncached = dep.build_uncached(model)
                    res, t_build, t_act = dep.switch(model)
                    ok_counts = len(res.started) == starts and len(res.stopped) == stops
                    met = (ok_counts and (limit is None or t_act <= limit)
                           and (total_limit is None or t_build + t_act <= total_limit))
                    target = (f"{starts} start(s), {stops} stop(s)"
                              + (f", <= {limit:g} s" if limit is not None else "")
                              + (f", build + switch <= {total_limit:g} s"
                                 if total_limit is not None else ""))
                    rows.append(u.Row(NAME, label, n, t_act, target=target, met=met,
                                      extra={"build": round(t_build, 3),
                                             "build_uncached": round(t_uncached, 3),
                                             "build_ratio": round(t_build / t_uncached, 3),
                                             "build_plus_switch": round(t_build + t_act, 3),
                                             "started": len(res.started),
                                             "stopped": len(res.stopped),
                                             "load": round(os.getloadavg()[0], 2)}))
                assert len(u.tagged_pids(tag, "sleep")) == n + 1
            finally:
                dep.switch(None)
    return rows
