"""Benchmark: deploy, no-op switch and undeploy of up to 10,000 processes (sysvinit, s6).

Each step is one ``procmgmt switch`` command line in a fresh interpreter, as a
user runs it: model evaluation, build (the render cache: empty at deploy,
full at the no-op switch), activation. Per step: wall time until the command
returns (undeploy: and every ``sleep`` is gone from /proc), and the peak RSS
of the procmgmt process (``ru_maxrss`` from ``wait4``: the largest of the
command and the children it waited for, i.e. the engine itself, not the
daemons it leaves running). Per backend and step, the scaling exponent
(slope of log t over log N) over the sizes run.

The largest N is bounded by the machine, said in the row when it bites:
``kernel.pid_max`` (this VM: 32,768) against the processes one service
costs (sysvinit: the program; s6: the program, its logger ``s6-log`` and
two ``s6-supervise``, i.e. 4), keeping a margin for everything else on the
machine (other jobs run tests beside the benchmarks), and ``ulimit -u``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time

from bench import _model as mdl
from bench import _s6
from bench import _util as u

NAME = "scale"
SIZES = {"quick": (10, 30), "full": (1000, 3000, 10000)}
#: Processes one service of the model costs on each backend (see the module docstring).
PIDS_PER_SERVICE = {"sysvinit": 1, "s6": 4}
#: Pids left to the rest of the machine (other jobs, their tests, our own helpers).
PID_MARGIN = 6000
#: Targets of issue 16 at the largest size.
RSS_TARGET_MIB = 200.0
EXPONENT_TARGET = 1.1


def pid_budget() -> tuple[int, str]:
    """How many more processes this run may create, and what limits it."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    running = sum(1 for e in os.listdir("/proc") if e.isdigit())
    soft, _ = resource.getrlimit(resource.RLIMIT_NPROC)
    limits = [(pid_max - running - PID_MARGIN,
               f"kernel.pid_max {pid_max} - {running} running - margin {PID_MARGIN}")]
    if soft != resource.RLIM_INFINITY:
        limits.append((soft - running - PID_MARGIN, f"ulimit -u {soft}"))
    return min(limits)


def _run(args: list[str], timeout: float) -> tuple[float, float, str]:
    """Run ``procmgmt ARGS`` as our child; (seconds, its peak RSS in MiB, output)."""
    t0 = time.monotonic()
    log = os.path.join(u.BASE_DIR, f".pmb-scale-{os.getpid()}.log")
    try:
        with open(log, "w+") as out:
            proc = subprocess.Popen([sys.executable, "-m", "procmgmt", *args], stdout=out,
                                    stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    os.wait4(proc.pid, 0)
                    raise TimeoutError(f"procmgmt {' '.join(args)} took over {timeout:g} s")
                time.sleep(0.01)
            seconds = time.monotonic() - t0
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            text = out.read()
    finally:
        os.unlink(log)
    if proc.returncode != 0:
        raise RuntimeError(f"procmgmt {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{text[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, text


def _one(backend: str, n: int) -> dict[str, tuple[float, float]]:
    """Deploy, no-op switch, undeploy of ``n`` sleeps; step -> (seconds, peak RSS MiB)."""
    tag = u.new_tag(f"sc{backend}")
    timeout = 300 + n * 0.2
    with u.workdir("sc") as d, u.tagged_env(tag), u.cleanup(tag):
        model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
        common = ["--state-dir", os.path.join(d, "s"), "-P", backend,
                  "--force-disable-user-change"]
        got: dict[str, tuple[float, float]] = {}
        try:
            t, rss, _ = _run(["switch", *common, model], timeout)
            got["deploy"] = (t, rss)
            pids = u.tagged_pids(tag, "sleep")
            assert len(pids) == n, (len(pids), n)
            t, rss, _ = _run(["switch", *common, model], timeout)
            got["no-op switch"] = (t, rss)
            assert sorted(u.tagged_pids(tag, "sleep")) == sorted(pids), "no-op restarted some"
        finally:
            t0 = time.monotonic()
            try:
                _, rss, _ = _run(["switch", *common, "--undeploy"], timeout)
            except BaseException:
                _stop_managers(d)
                raise
            pids_left = u.tagged_pids(tag, "sleep")
            t_gone = u.wait_gone(pids_left, 120) if pids_left else time.monotonic()
        got["undeploy"] = (t_gone - t0, rss)
        return got


def _stop_managers(workdir: str) -> None:
    """After a failed undeploy: SIGTERM the managers of ``workdir`` (s6-svscan takes
    its supervisors down with it; they do not carry the tag), then SIGKILL what stays."""
    needle = workdir.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (os.getpid(), os.getppid()):
            with contextlib.suppress(OSError), open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    pids.append(int(entry))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        with contextlib.suppress(TimeoutError):
            u.wait_gone(pids, 30)


def run(mode: str) -> list[u.Row]:
    """Every backend at every size the machine allows; exponents; RSS targets."""
    rows: list[u.Row] = []
    backends = ["sysvinit"] + (["s6"] if _s6.available() else [])
    for backend in backends:
        sizes: list[int] = []
        series: dict[str, list[float]] = {}
        for wanted in SIZES[mode]:
            budget, limit = pid_budget()
            n = min(wanted, budget // PIDS_PER_SERVICE[backend])
            capped = n < wanted
            if n < 10:
                break
            load = round(os.getloadavg()[0], 2)
            try:
                got = _one(backend, n)
            except (RuntimeError, TimeoutError, AssertionError, u.LeftoverError) as exc:
                # The sizes measured so far stay in the table; a larger one is not tried.
                rows.append(u.Row(NAME, f"{backend} deploy / no-op / undeploy", n,
                                  extra={"error": str(exc).splitlines()[0][:200],
                                         "load": load},
                                  target="runs", met=False))
                break
            sizes.append(n)
            largest = wanted == SIZES[mode][-1]
            for step, (t, rss) in got.items():
                series.setdefault(step, []).append(t)
                extra = {"peak_rss_mib": round(rss, 1), "load": load}
                if capped:
                    extra["wanted"] = wanted
                    extra["limit"] = (f"{limit}: {PIDS_PER_SERVICE[backend]} process(es) per "
                                      "service")
                rows.append(u.Row(
                    NAME, f"{backend} {step}", n, t, extra=extra,
                    target=f"engine peak RSS <= {RSS_TARGET_MIB:g} MiB" if largest else None,
                    met=(rss <= RSS_TARGET_MIB) if largest else None))
        if len(sizes) > 1:
            for step, ts in series.items():
                exp = u.fit_exponent(sizes, ts)
                rows.append(u.Row(
                    NAME, f"scaling exponent {backend} {step}", None,
                    extra={"exponent": None if exp is None else round(exp, 3), "sizes": sizes},
                    target=f"<= {EXPONENT_TARGET:g}",
                    met=None if exp is None else exp <= EXPONENT_TARGET))
    return rows
