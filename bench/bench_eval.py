"""Benchmark 1: model evaluation + generation for N instances, every registered backend.

Each (backend, N) runs in a fresh interpreter (``python -m bench.bench_eval
--worker``) so that peak RSS is that of one evaluation and nothing is cached
from a previous size. Timed phases: *evaluate* (load + validate the model),
*render* (every backend file, in memory: what ``procmgmt generate`` computes)
and *write* (the files into a directory, like ``generate -o``). The targets
apply to evaluate + render + write.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from bench import _model as mdl
from bench import _util as u

NAME = "eval"
SIZES = {"quick": (100,), "full": (100, 1000, 10000)}


def worker(model: str, backend: str, state: str, out: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process."""
    from procmgmt.backends import get_backend
    from procmgmt.deploy import store
    from procmgmt.deploy.build import evaluate, render

    settings = mdl.settings_for(state, backend)
    t0 = time.monotonic()
    m, specs = evaluate(model, settings)
    t1 = time.monotonic()
    result = render(m, specs, settings, get_backend(backend))
    t2 = time.monotonic()
    # Each process's files in a directory of its own, as in the store (a backend
    # may give every process the same relative paths, e.g. runit's service/run).
    os.makedirs(out)
    for r in result.processes:
        store.write_files(os.path.join(out, r.spec.name), list(r.files))
    store.write_files(os.path.join(out, "generation"), list(result.generation_files))
    files = [f for r in result.processes for f in r.files] + result.generation_files
    t3 = time.monotonic()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {"evaluate": t1 - t0, "render": t2 - t1, "write": t3 - t2, "total": t3 - t0,
            "files": len(files), "processes": len(result.processes), "peak_rss_mib": rss}


def run(mode: str) -> list[u.Row]:
    """Every backend at every size; time, peak RSS and the scaling exponent."""
    from procmgmt.backends import backend_names

    rows: list[u.Row] = []
    sizes = SIZES[mode]
    for backend in backend_names():
        times: list[float] = []
        for n in sizes:
            with u.workdir("eval") as d:
                model = mdl.write_model(os.path.join(d, "model.py"), n, "eval", shape="some")
                proc = subprocess.run(
                    [sys.executable, "-m", "bench.bench_eval", "--worker", model, backend,
                     os.path.join(d, "state"), os.path.join(d, "out")],
                    cwd=u.REPO, capture_output=True, text=True, timeout=600, check=False)
                if proc.returncode != 0:
                    raise RuntimeError(f"eval worker {backend} N={n} failed:\n{proc.stderr}")
                r = json.loads(proc.stdout.strip().splitlines()[-1])
            assert r["processes"] == n
            times.append(r["total"])
            limit = {1000: 1.0, 10000: 10.0}.get(n)
            ok = None if limit is None else r["total"] <= limit and (
                n != 10000 or r["peak_rss_mib"] <= 300)
            target = None if limit is None else (f"<= {limit:g} s" + (", <= 300 MiB"
                                                                      if n == 10000 else ""))
            rows.append(u.Row(NAME, f"evaluate+generate {backend}", n, r["total"],
                              extra={k: round(r[k], 3) if isinstance(r[k], float) else r[k]
                                     for k in ("peak_rss_mib", "evaluate", "render", "write",
                                               "files")}, target=target, met=ok))
        exp = u.fit_exponent(sizes, times)
        if exp is not None:
            rows.append(u.Row(NAME, f"scaling exponent {backend}", None,
                              extra={"exponent": round(exp, 3), "sizes": list(sizes)},
                              target="~1 (linear): <= 1.15", met=exp <= 1.15))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        print(json.dumps(worker(*sys.argv[2:6])))
    else:
        sys.exit("usage: python -m bench.bench_eval --worker MODEL BACKEND STATE OUT")
