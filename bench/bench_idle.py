"""Benchmark: what stays resident after a switch, and what it costs while idle.

procmgmt is a command, not a daemon: after ``procmgmt switch`` returns,
nothing of procmgmt itself may keep running; what runs is the manager it
started (if the backend has one), the services, and the processes that are
part of a service. For the webapps example on every backend that runs for
real here, the switch runs under a *holder*: a child subreaper
(``PR_SET_CHILD_SUBREAPER``) that receives every process the switch leaves
behind, daemonized or not. Once the switch has returned and a moment has
passed, every live descendant of the holder is classified:

- ``procmgmt``: a Python interpreter running procmgmt (the CLI, the engine,
  a helper module): must be none;
- ``manager``: the process manager procmgmt started (s6-svscan and
  s6-supervise, runsvdir and runsv, the embedded supervisord);
- ``logger``: the manager's log writers (s6-log, svlogd);
- ``wrapper``: a shell process that is part of a service: the generated
  proxy (waits for dependencies, drops privileges, then execs the program,
  so it normally does not stay), the liveness wrapper, the sysvinit
  supervising loop of a restart policy;
- ``service``: the programs of the model.

Rows: per backend and class (classes with no process left out, except
``procmgmt``), the number of processes, their summed RSS (VmRSS) and their
CPU use over an idle window (utime + stime from /proc/PID/stat). The target
is on the ``procmgmt`` class: 0 processes. tests/e2e/test_idle.py runs the
same check on every backend.
Docker is not among the backends: its containers are children of
containerd, not of the switch, and are measured by docker itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import procmgmt
from bench import _util as u

NAME = "idle"
#: Backends run for real without a container or a daemon of their own.
BACKENDS = ("sysvinit", "supervisord", "runit", "s6")
#: The manager's program a backend needs (its rows are left out without it).
NEEDS = {"runit": "runsvdir", "s6": "s6-svscan"}
EXAMPLE = os.path.join(u.REPO, "examples", "webapps", "processes.py")
IDLE_WINDOW = {"quick": 1.0, "full": 5.0}
CLASSES = ("procmgmt", "manager", "logger", "wrapper", "service")
MANAGERS = frozenset({"s6-svscan", "s6-supervise", "runsvdir", "runsv"})
LOGGERS = frozenset({"s6-log", "svlogd"})
SHELLS = frozenset({"sh", "dash", "bash", "busybox"})
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    """One process left behind, as /proc describes it."""

    pid: int
    comm: str
    argv: tuple[str, ...]
    rss_kib: int
    cpu_ticks: int

    @property
    def kind(self) -> str:
        """Its class (see the module docstring)."""
        return classify(self.comm, self.argv)


def classify(comm: str, argv: tuple[str, ...]) -> str:
    """``procmgmt``, ``manager``, ``logger``, ``wrapper`` or ``service``."""
    if comm in MANAGERS or "supervisor.supervisord" in argv:
        return "manager"
    if comm in LOGGERS:
        return "logger"
    if _runs_procmgmt(argv):
        return "procmgmt"
    if comm in SHELLS:
        return "wrapper"
    return "service"


def _runs_procmgmt(argv: tuple[str, ...]) -> bool:
    """A Python interpreter running procmgmt's code (``-m procmgmt[.x]``, its script)."""
    if not argv or "python" not in os.path.basename(argv[0]):
        return False
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m" and i + 1 < len(argv):
            return argv[i + 1].split(".")[0] == "procmgmt"
        if arg == "-c":
            return "procmgmt" in argv[i + 1] if i + 1 < len(argv) else False
        if not arg.startswith("-"):
            # Its console script, or a file of its package (not any path that has
            # a "procmgmt" directory in it: a clone's examples/ are services).
            return os.path.basename(arg) == "procmgmt" or \
                os.path.realpath(arg).startswith(_PACKAGE + os.sep)
    return False


#: Where procmgmt's own code is (the package directory).
_PACKAGE = os.path.dirname(os.path.realpath(procmgmt.__file__))


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def describe(pid: int) -> Proc | None:
    """The process ``pid`` (None when it is gone or a zombie)."""
    stat = _read(f"/proc/{pid}/stat")
    status = _read(f"/proc/{pid}/status")
    cmdline = _read(f"/proc/{pid}/cmdline")
    if stat is None or status is None or cmdline is None:
        return None
    head, tail = stat.rsplit(b")", 1)
    fields = tail.split()
    if fields[0] in (b"Z", b"X"):
        return None
    rss = 0
    for line in status.decode(errors="replace").splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    comm = head.split(b"(", 1)[1].decode(errors="replace")
    argv = tuple(a.decode(errors="replace") for a in cmdline.split(b"\0") if a)
    return Proc(pid, comm, argv, rss, int(fields[11]) + int(fields[12]))


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat:
                with contextlib.suppress(IndexError, ValueError):
                    ppid = int(stat.rsplit(b")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def hold(argv: list[str]) -> int:
    """The holder: as a child subreaper, run ``argv``, print its exit status, then
    stay (adopting whatever it left behind) until stdin closes. The command's
    output goes to stderr: stdout carries only the status."""
    u.become_subreaper()
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    rc = child.wait()
    print(rc, flush=True)
    sys.stdin.read()
    return 0


class Holder:
    """A holder process running one command; its descendants are what the command left."""

    def __init__(self, argv: list[str], env: dict[str, str], log: str) -> None:
        self.log = log
        with open(log, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.bench_idle", *argv],
                                         cwd=u.REPO, env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True)

    def wait_command(self, timeout: float) -> int:
        """The command's exit status, once it has returned."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while not line and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
        if not line:
            raise RuntimeError("the holder's command did not finish")
        return int(line)

    def left(self) -> list[Proc]:
        """The live processes the command left behind."""
        return [p for p in map(describe, descendants(self.proc.pid)) if p is not None]

    def close(self) -> None:
        """Let the holder exit (its adopted processes go to the next reaper up)."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _kill(procs: list[Proc]) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p.pid, signal.SIGKILL)


def measure(backend: str, work: str, window: float,
            port_base: int | None = None) -> dict[str, list[Proc]]:
    """Deploy the webapps example with ``backend`` under a holder, wait, classify
    what is left (before and after an idle ``window``: the CPU it used), undeploy
    and check that nothing is left. class -> processes, with cpu_ticks the
    window's CPU use."""
    base = u.free_port_block(2) if port_base is None else port_base
    cli = [sys.executable, "-m", "procmgmt", "switch", "--state-dir",
           os.path.join(work, "state"), "-P", backend, "--force-disable-user-change",
           "--extra-params", json.dumps({"port_base": base})]
    env = {**os.environ, "PYTHONPATH": os.path.join(u.REPO, "src")}
    holder = Holder([*cli, EXAMPLE], env, os.path.join(work, "switch.log"))
    try:
        rc = holder.wait_command(120)
        if rc != 0:
            with open(holder.log) as f:
                raise RuntimeError(f"procmgmt switch -P {backend} failed ({rc}): "
                                   f"{f.read()[-2000:]}")
        time.sleep(0.5)
        before = {p.pid: p for p in holder.left()}
        time.sleep(window)
        after = holder.left()
        classes: dict[str, list[Proc]] = {c: [] for c in CLASSES}
        for p in after:
            old = before.get(p.pid)
            used = p.cpu_ticks - old.cpu_ticks if old is not None else p.cpu_ticks
            classes[p.kind].append(Proc(p.pid, p.comm, p.argv, p.rss_kib, used))
        undeploy = subprocess.run([*cli, "--undeploy"], env=env, capture_output=True,
                                  text=True, timeout=120, check=False)
        if undeploy.returncode != 0:
            raise RuntimeError(f"undeploy -P {backend} failed: {undeploy.stderr[-2000:]}")
        deadline = time.monotonic() + 10
        while holder.left() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = holder.left()
        if left:
            _kill(left)
            raise u.LeftoverError(f"{backend}: left after undeploy: "
                                  f"{[(p.pid, p.comm) for p in left]}")
        return classes
    except BaseException:
        _kill(holder.left())
        raise
    finally:
        holder.close()


def run(mode: str) -> list[u.Row]:
    """Every backend of :data:`BACKENDS` whose manager is installed."""
    rows: list[u.Row] = []
    window = IDLE_WINDOW[mode]
    for backend in BACKENDS:
        tool = NEEDS.get(backend)
        if tool is not None and shutil.which(tool) is None:
            continue
        with u.workdir("idle") as d:
            load = round(os.getloadavg()[0], 2)
            classes = measure(backend, d, window)
        for kind in CLASSES:
            procs = classes[kind]
            if not procs and kind != "procmgmt":
                continue
            ticks = sum(p.cpu_ticks for p in procs)
            extra = {"processes": len(procs),
                     "rss_mib": round(sum(p.rss_kib for p in procs) / 1024, 1),
                     "cpu_pct": round(100 * ticks / CLOCK_TICKS / window, 2),
                     "window_s": window, "load": load,
                     "comm": ",".join(sorted({p.comm for p in procs}))}
            rows.append(u.Row(NAME, f"{backend} idle: {kind}", len(procs), extra=extra,
                              target="0 processes" if kind == "procmgmt" else None,
                              met=(not procs) if kind == "procmgmt" else None))
    return rows


if __name__ == "__main__":
    sys.exit(hold(sys.argv[1:]))
