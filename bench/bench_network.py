"""Benchmark 6: one model deployed to 8 hosts vs the same model to 1 host (procmgmt network).

The hosts are sshd servers on loopback addresses of this machine, each with its
own login user (:mod:`tests.network.hosts`, the fixture of the network tests):
the transition reaches them through pyinfra over SSH exactly as it would
remote machines, only without the wire's latency. Every instance of a model
of N ``/bin/sleep`` processes is placed on every target, and the time is the
whole ``network switch`` (connect, probe and lock, build per target, transfer,
activation, record) until it returns, the fastest of three runs of each
count (1, 8, 1, 8 ...: a load from elsewhere hits both alike); the undeploy is
reported beside it.
Work per host runs in parallel, so 8 hosts should cost little more than 1.

But every "host" here shares the same CPUs. So the CPU time of each switch
is measured too, where the machine has cgroups (``cpuacct``, or cgroup v2's
``cpu.stat``): the coordinator's (this process and its pyinfra worker) and
the hosts' (every sshd and all it starts). The 8-host switch cannot take
less than its CPU time divided by the CPUs, whatever the parallelism: the
last row compares that floor with the target (1.5 times the one-host
time), which says whether the target is reachable on this machine at all.

Needs root (it creates the login users), Debian's ``openssh-server`` and
pyinfra in the venv; without them the benchmark reports no rows and says why.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from collections.abc import Iterator

from bench import _model as mdl
from bench import _util as u

NAME = "network"
#: (host counts, processes per host, repetitions: the fastest of each count counts)
SIZES = {"quick": ((1, 2), 2, 1), "full": ((1, 8), 10, 3)}
TARGET_RATIO = 1.5


def missing() -> str | None:
    """Why the benchmark cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root (creates login users)"
    if not os.path.exists("/usr/sbin/sshd") or not shutil.which("useradd"):
        return "needs sshd and useradd (apt-get install openssh-server passwd)"
    try:
        import pyinfra  # noqa: F401
    except ImportError:
        return "needs pyinfra in the venv (pip install pyinfra)"
    return None


def _infra(path: str, hosts: list, key: str, known: str, venv: str, case: str) -> str:
    lines = ["from procmgmt.network import SSH, Target", "", "def infrastructure():",
             "    return ["]
    for h in hosts:
        lines.append(f"        Target({h.name!r}, SSH({h.address!r}, {h.ssh_port}, {h.user!r}, "
                     f"{key!r}, {known!r}), 'sysvinit', {str(h.home / case)!r}, "
                     f"venv={venv!r}, properties={{'address': {h.address!r}}}),")
    lines.append("    ]")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


class CPU:
    """CPU seconds of the processes put in a cgroup (and all they start), or None
    where this machine offers no cgroup to make."""

    ROOTS = (("/sys/fs/cgroup/cpuacct", "cpuacct.usage", 1e-9),
             ("/sys/fs/cgroup", "cpu.stat", 1e-6), ("/sys/fs/cgroup/unified", "cpu.stat", 1e-6))

    def __init__(self, name: str) -> None:
        self.path: str | None = None
        self.file, self.scale = "", 1.0
        for root, file, scale in self.ROOTS:
            if not os.path.exists(os.path.join(root, file)):
                continue
            path = os.path.join(root, f"procmgmt-bench-{os.getpid()}-{name}")
            try:
                os.mkdir(path)
            except OSError:
                continue
            self.path, self.file, self.scale = path, file, scale
            self.root = root
            return

    def add(self, pid: int) -> None:
        """Account ``pid`` (and what it starts from now on) here."""
        if self.path is not None:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def seconds(self) -> float | None:
        """CPU seconds used so far (None: not measured)."""
        if self.path is None:
            return None
        with open(os.path.join(self.path, self.file)) as f:
            text = f.read()
        if self.file == "cpu.stat":
            text = text.split("usage_usec", 1)[1].split()[0]
        return int(text) * self.scale

    def remove(self) -> None:
        """Back to the root cgroup, and the cgroup removed (once it is empty)."""
        if self.path is not None:
            with contextlib.suppress(OSError), open(os.path.join(self.path, "cgroup.procs")) as f:
                for pid in f.read().split():
                    with open(os.path.join(self.root, "cgroup.procs"), "w") as root:
                        root.write(pid)
            with contextlib.suppress(OSError):
                os.rmdir(self.path)


@contextlib.contextmanager
def accounting() -> Iterator[tuple[CPU, CPU]]:
    """(coordinator, hosts) CPU accounts; this process goes into the first."""
    coordinator, hosts = CPU("coordinator"), CPU("hosts")
    coordinator.add(os.getpid())
    try:
        yield coordinator, hosts
    finally:
        hosts.remove()
        coordinator.remove()


def _used(before: tuple[float | None, ...], after: tuple[float | None, ...]) -> float | None:
    if None in before or None in after:
        return None
    return round(sum(a - b for a, b in zip(after, before, strict=True)  # type: ignore[operator]
                     ), 3)


DIST = """\
def distribution(infrastructure, processes):
    return {name: list(infrastructure) for name in processes}
"""


def run(mode: str) -> list[u.Row]:
    """Deploy and undeploy the same model on 1 host and on the most hosts; the ratio."""
    why = missing()
    if why:
        print(f"   network benchmark left out: {why}", flush=True)
        return []
    from tests.network.hosts import host_set

    from procmgmt.network.transition import Network
    from procmgmt.settings import resolve

    counts, n, reps = SIZES[mode]
    rows: list[u.Row] = []
    #: Per host count, the fastest of the repetitions: (seconds, its details).
    best: dict[int, tuple[float, dict[str, object]]] = {}
    cpu: dict[int, float | None] = {}
    with accounting() as (coordinator, hosts_cpu), host_set(max(counts)) as hs:
        for h in hs.hosts:
            assert h.sshd is not None
            hosts_cpu.add(h.sshd.pid)
        for rep in range(reps):  # 1, 8, 1, 8 ...: a load from elsewhere hits both alike
            for count in counts:
                tag = u.new_tag("net")
                with u.workdir("net") as d, u.tagged_env(tag), u.cleanup(tag):
                    case = f"bench{count}x{rep}"
                    infra = _infra(os.path.join(d, "infra.py"), hs.hosts[:count], str(hs.key),
                                   str(hs.known_hosts), hs.venv, case)
                    dist = os.path.join(d, "dist.py")
                    with open(dist, "w") as f:
                        f.write(DIST)
                    model = mdl.write_model(os.path.join(d, "model.py"), n, tag)
                    progress = io.StringIO()
                    net = Network(resolve({"state_dir": os.path.join(d, "coordinator")}),
                                  progress)
                    before = (coordinator.seconds(), hosts_cpu.seconds())
                    t0 = time.monotonic()
                    net.switch(infra, dist, model)
                    seconds = time.monotonic() - t0
                    after = (coordinator.seconds(), hosts_cpu.seconds())
                    if os.environ.get("PMBENCH_VERBOSE"):
                        print(progress.getvalue(), flush=True)
                    running = len(u.tagged_pids(tag, "sleep"))
                    t1 = time.monotonic()
                    net.undeploy()
                    extra: dict[str, object] = {
                        "hosts": count, "per_host": n, "running": running,
                        "undeploy": round(time.monotonic() - t1, 3), "runs": reps}
                    used = _used(before, after)
                    if used is not None:
                        extra["cpu"] = used
                        extra["cpu_coordinator"] = _used(before[:1], after[:1])
                    if count not in best or seconds < best[count][0]:
                        best[count] = (seconds, extra)
                        cpu[count] = used
    times = {count: best[count][0] for count in counts}
    for count in counts:
        rows.append(u.Row(NAME, f"deploy to {count} host(s)", n * count, times[count],
                          extra=best[count][1]))
    few, most = min(counts), max(counts)
    ratio = times[most] / times[few]
    rows.append(u.Row(NAME, f"{most} hosts vs {few}", n * most, times[most], ratio=ratio,
                      ratio_to=f"{few} host", target=f"<= {TARGET_RATIO:g} x",
                      met=ratio <= TARGET_RATIO))
    cores = os.cpu_count() or 1
    most_cpu = cpu[most]
    if most_cpu is not None:
        # The fastest the 8-host switch could be here: its CPU time spread over every
        # CPU with nothing else running. Above the target: out of reach on this machine.
        floor = most_cpu / cores
        budget = TARGET_RATIO * times[few]
        rows.append(u.Row(NAME, f"{most} hosts: CPU time / {cores} CPUs", n * most, floor,
                          ratio=floor / times[few], ratio_to=f"{few} host",
                          extra={"cpu": most_cpu, "budget": round(budget, 3)},
                          target=f"<= {TARGET_RATIO:g} x (reachable)", met=floor <= budget))
    return rows
