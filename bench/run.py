"""procmgmt's benchmark suite: one command, a table on stdout, JSON and Markdown results.

    .venv/bin/python bench/run.py [--quick] [--only NAME[,NAME...]] [--out DIR]

Benchmarks (see bench/README.md): eval, activation, supervisord, switch, readiness,
network, scale, supervision, idle.
Every ratio compares measurements taken in the same run. The suite re-runs
itself under a child subreaper (PR_SET_CHILD_SUBREAPER) so that orphaned
daemons are reaped at once, as in the perf baselines.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _util as u

BENCHMARKS = {
    "eval": "bench.bench_eval",
    "activation": "bench.bench_activation",
    "supervisord": "bench.bench_supervisord",
    "switch": "bench.bench_switch",
    "readiness": "bench.bench_readiness",
    "network": "bench.bench_network",
    "scale": "bench.bench_scale",
    "supervision": "bench.bench_supervision",
    "idle": "bench.bench_idle",
}
REAPED = "PMBENCH_REAPED"


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return ""
    return f"{x:.3f}{unit}" if x < 10 else f"{x:.2f}{unit}"


def table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The result rows as a fixed-width (or Markdown) table."""
    head = ["benchmark", "case", "N", "time", "ratio", "vs", "details", "target", "met"]
    lines = []
    for r in rows:
        extra = r.get("extra") or {}
        detail = ", ".join(f"{k}={v}" for k, v in extra.items())
        met = {True: "yes", False: "NO", None: ""}[r.get("met")]
        lines.append([r["bench"], r["case"], "" if r["n"] is None else str(r["n"]),
                      _fmt(r.get("seconds"), " s"), _fmt(r.get("ratio")),
                      r.get("ratio_to") or "", detail, r.get("target") or "", met])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "/") for c in line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
              for i, h in enumerate(head)]
    widths[6] = min(widths[6], 60)
    fmt = "  ".join(f"{{:{w}.{w}}}" if i == 6 else f"{{:{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))]
                     + [fmt.format(*line) for line in lines])


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks; print the table; write latest.json and latest.md."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="smallest size of every benchmark (seconds; what the smoke test runs)")
    p.add_argument("--only", metavar="NAMES",
                   help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    p.add_argument("--out", metavar="DIR", default=os.path.join(u.REPO, "bench", "results"),
                   help="where latest.json and latest.md go (default bench/results)")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if os.environ.get(REAPED) != "1":
        env = {**os.environ, REAPED: "1"}
        return u.run_under_reaper([sys.executable, os.path.abspath(__file__),
                                   *(argv if argv is not None else sys.argv[1:])], env=env)

    mode = "quick" if args.quick else "full"
    info = u.machine_info()
    info["loadavg_before"] = os.getloadavg()
    info["bench_dir"] = u.BASE_DIR
    print(f"procmgmt benchmarks ({mode}) on {info['cpu']}, {info['cores']} cores, "
          f"{info['ram_gib']} GiB, Linux {info['kernel']}, Python {info['python']}, "
          f"load {info['loadavg_before'][0]:.2f}", flush=True)
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    t_all = time.monotonic()
    for name in names:
        t0 = time.monotonic()
        print(f"-- {name} ...", flush=True)
        try:
            module = importlib.import_module(BENCHMARKS[name])
            got = [r.to_json() for r in module.run(mode)]
        except Exception:
            errors[name] = traceback.format_exc()
            print(errors[name], file=sys.stderr, flush=True)
            continue
        rows += got
        print(table(got), flush=True)
        print(f"   ({time.monotonic() - t0:.1f} s)", flush=True)
    info["loadavg_after"] = os.getloadavg()
    info["suite_seconds"] = round(time.monotonic() - t_all, 1)
    print("\n" + table(rows))
    missed = [r for r in rows if r.get("met") is False]
    print(f"\n{sum(1 for r in rows if r.get('met'))} targets met, {len(missed)} missed"
          + (f", {len(errors)} benchmark(s) failed: {', '.join(errors)}" if errors else ""))
    os.makedirs(args.out, exist_ok=True)
    data = {"mode": mode, "machine": info, "rows": rows, "errors": errors,
            "tags": list(u.TAGS_USED)}
    u.dump_json(os.path.join(args.out, "latest.json"), data)
    md = [f"# procmgmt benchmark results ({mode})", "",
          "Produced by `.venv/bin/python bench/run.py"
          + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
          + "`; ratios compare measurements of the same run.", "",
          "| machine | |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in info.items()]
    md += ["", table(rows, markdown=True), ""]
    if errors:
        md += ["## Failed benchmarks", ""] + [f"- {k}: see latest.json" for k in errors] + [""]
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write("\n".join(md))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
