"""Flame graphs of procmgmt's hot paths, recorded with py-spy into bench/results/flame/.

    .venv/bin/pip install -c constraints.txt -e '.[bench]'    # py-spy
    .venv/bin/python bench/profile.py                # every scenario
    .venv/bin/python bench/profile.py sysvinit-start  # one

Numbers say how long something takes; a flame graph says where the time
goes, which is what a fix needs. Each scenario runs in a fresh interpreter
under ``py-spy record`` (procmgmt's process with all its threads, idle ones
too: a worker waiting for a script is time the switch spends; not the
managers or programs it starts) and writes ``<scenario>.svg`` plus the
collapsed stacks (``<scenario>.txt``, for grep and diff between two runs).
The setup (the model, the build, the deployment a stop needs) runs before
the sampler attaches, so the graph shows only the step named.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import _model as mdl
from bench import _procmgmt as pm
from bench import _util as u

N = 1000
OUT = os.path.join(u.REPO, "bench", "results", "flame")
#: The sampler attaches once the scenario writes this line to its stdout.
READY = "profile: go"


def _scenario(name: str, n: int) -> None:
    """Run one scenario; print READY just before the step to profile, wait for the go."""
    backend, _, step = name.partition("-")
    tag = u.new_tag("flame")
    with u.workdir("flame") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
        dep = pm.Deployer(mdl.settings_for(os.path.join(d, "s"), backend))
        steps: dict[str, Callable[[], object]] = {}
        if step == "build":
            dep.build(model)  # the render cache warm: what `switch` of a built model costs
            steps["build"] = lambda: dep.build(model)
        else:
            gen, _ = dep.build(model)
            empty, _ = dep.build(None)
            if step == "stop":
                dep.switch_to(gen)
            steps["start"] = lambda: dep.switch_to(gen)
            steps["stop"] = lambda: dep.switch_to(empty)
        print(f"{READY} {os.getpid()}", flush=True)
        sys.stdin.readline()  # the sampler is attached
        t0 = time.monotonic()
        steps[step]()
        print(f"{name}: {time.monotonic() - t0:.3f} s", file=sys.stderr)
        if step == "start":
            dep.switch_to(empty)


SCENARIOS = ("sysvinit-start", "sysvinit-stop", "sysvinit-build",
             "supervisord-start", "supervisord-stop", "s6-start", "s6-stop",
             "runit-start", "runit-stop")


def _record(name: str, n: int, pyspy: str) -> None:
    """Start the scenario, attach py-spy to it at READY, write the SVG and the stacks."""
    os.makedirs(OUT, exist_ok=True)
    env = {**os.environ, "PROFILE_SCENARIO": name, "PROFILE_N": str(n)}
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--run"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    try:
        line = child.stdout.readline()
        if not line.startswith(READY + " "):
            raise SystemExit(f"{name}: the scenario did not get ready: {line!r}")
        # The engine's process only (its threads): following subprocesses would have
        # py-spy attach to every one of a thousand started programs.
        target = line.split()[-1]
        samplers = []
        for fmt, ext in (("flamegraph", "svg"), ("raw", "txt")):
            samplers.append(subprocess.Popen(
                [pyspy, "record", "--pid", target, "--threads",
                 "--idle", "--rate", "100", "--format", fmt, "--nonblocking",
                 "-o", os.path.join(OUT, f"{name}.{ext}")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1.0)  # both samplers attached
        child.stdin.write("go\n")
        child.stdin.flush()
        child.wait(timeout=600)
        for s in samplers:
            s.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if child.returncode != 0:
        raise SystemExit(f"{name}: the scenario failed ({child.returncode})")
    print(f"wrote {os.path.relpath(os.path.join(OUT, name + '.svg'), u.REPO)}")


def main() -> int:
    """Record every scenario named (default: all) as a flame graph."""
    if "--run" in sys.argv:
        if os.environ.get("PROFILE_UNDER_REAPER") != "1":
            return u.run_under_reaper([sys.executable, *sys.argv],
                                      env={**os.environ, "PROFILE_UNDER_REAPER": "1"})
        _scenario(os.environ["PROFILE_SCENARIO"], int(os.environ["PROFILE_N"]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                   help=f"any of {', '.join(SCENARIOS)} (default: all)")
    p.add_argument("-n", type=int, default=N, help=f"processes (default {N})")
    args = p.parse_args()
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario {unknown[0]!r}: choose from {', '.join(SCENARIOS)}")
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(pyspy):
        print("bench/profile.py needs py-spy: .venv/bin/pip install -c constraints.txt "
              "-e '.[bench]'", file=sys.stderr)
        return 2
    for name in args.scenarios or SCENARIOS:
        _record(name, args.n, pyspy)
    return 0


if __name__ == "__main__":
    sys.exit(main())
