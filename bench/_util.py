"""Shared helpers of the benchmark suite: tagging, /proc scans, a subreaper, fits, machine info.

Every process a benchmark starts carries ``BENCH_TAG=<unique tag>`` in its
environment (set on the manager, or in the synthetic model's ``environment``),
so the suite finds them through ``/proc/PID/environ`` -- to check that all N
are up, to wait until they are gone, and to prove that nothing was left
behind -- without ever matching processes by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG_VAR = "BENCH_TAG"
PR_SET_CHILD_SUBREAPER = 36
#: Where the benchmarks' state dirs, service dirs and configs live. tmpfs by default:
#: the suite measures the managers, not the disk (on this VM's ext4, one mkdir took
#: 0.2-1 ms under load from other jobs). ``PMBENCH_DIR`` chooses another place.
BASE_DIR = os.environ.get("PMBENCH_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else "/tmp")


#: Every tag handed out in this process (run.py records them, the smoke test checks them).
TAGS_USED: list[str] = []


def new_tag(kind: str) -> str:
    """A unique tag for one benchmark run (it ends up in every process's environment)."""
    tag = f"pmbench-{kind}-{uuid.uuid4().hex[:10]}"
    TAGS_USED.append(tag)
    return tag


# --- /proc --------------------------------------------------------------------------

def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """The pid exists and is not a zombie (a zombie has exited: it only awaits reaping)."""
    st = _state(pid)
    return st is not None and st not in ("Z", "X")


def tagged_pids(tag: str, comm: str | None = None) -> list[int]:
    """Live (non-zombie) pids whose environment holds ``BENCH_TAG=<tag>``; with ``comm``,
    only those whose command name is ``comm`` (e.g. ``sleep``)."""
    needle = f"{TAG_VAR}={tag}\0".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle not in env + b"\0":
            continue
        pid = int(entry)
        if not alive(pid):
            continue
        if comm is not None:
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() != comm:
                        continue
            except OSError:
                continue
        found.append(pid)
    return found


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.005,
               what: str = "condition") -> float:
    """Poll ``cond`` (bounded); the monotonic time at which it first held."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g} s")
        time.sleep(interval)


def wait_count(tag: str, n: int, timeout: float, comm: str = "sleep",
               interval: float = 0.01) -> tuple[float, list[int]]:
    """Wait until exactly-or-more ``n`` tagged ``comm`` processes live; (time, pids)."""
    pids: list[int] = []

    def enough() -> bool:
        nonlocal pids
        pids = tagged_pids(tag, comm)
        return len(pids) >= n

    t = wait_until(enough, timeout, interval, what=f"{n} live {comm} processes tagged {tag}")
    return t, pids


def wait_gone(pids: Iterable[int], timeout: float, interval: float = 0.002) -> float:
    """Wait until none of ``pids`` is alive (zombies count as gone); the time it held."""
    left = list(pids)

    def gone() -> bool:
        nonlocal left
        left = [p for p in left if alive(p)]
        return not left

    return wait_until(gone, timeout, interval, what="processes gone")


def kill_tagged(tag: str) -> list[int]:
    """SIGKILL every live process carrying ``tag`` (cleanup after a failure); their pids."""
    pids = tagged_pids(tag)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


class LeftoverError(RuntimeError):
    """A benchmark left tagged processes behind."""


def assert_no_leftovers(tag: str, timeout: float = 10.0) -> None:
    """Nothing tagged ``tag`` may live; waits a little (bounded), then kills and raises."""
    deadline = time.monotonic() + timeout
    while True:
        left = tagged_pids(tag)
        if not left:
            return
        if time.monotonic() > deadline:
            kill_tagged(tag)
            raise LeftoverError(f"{len(left)} processes tagged {tag} left behind: {left[:10]}")
        time.sleep(0.05)


@contextlib.contextmanager
def tagged_env(tag: str) -> Iterator[None]:
    """``BENCH_TAG=tag`` in our environment while the block runs (children inherit it)."""
    old = os.environ.get(TAG_VAR)
    os.environ[TAG_VAR] = tag
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TAG_VAR, None)
        else:
            os.environ[TAG_VAR] = old


@contextlib.contextmanager
def cleanup(tag: str) -> Iterator[None]:
    """On the way out (also on error): kill what is left of ``tag``, then prove nothing is."""
    try:
        yield
    except BaseException:
        kill_tagged(tag)
        raise
    assert_no_leftovers(tag)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[str]:
    """A short private temp dir (short: unix socket paths allow 107 bytes)."""
    d = tempfile.mkdtemp(prefix=f"pmb-{prefix}-", dir=BASE_DIR)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def write_script(path: str, body: str) -> None:
    """An executable ``#!/bin/sh`` script (a hand-written service's run file)."""
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)


def write_scan_dir(root: str, runs: dict[str, str], log_root: str | None,
                   logger: str) -> str:
    """A hand-written scan directory under ``root`` (runit's and s6's layout): per
    name a ``run`` that execs its command and, with ``log_root``, a ``log/run``
    that execs ``logger`` (e.g. ``svlogd``) on ``<log_root>/<name>``. Each service
    directory is renamed into place complete, as the baselines do. The scan
    directory's path."""
    scan = os.path.join(root, "scan")
    os.makedirs(scan)
    for name, command in runs.items():
        tmp = os.path.join(root, f".{name}")
        os.makedirs(tmp)
        redirect = "exec 2>&1\n" if log_root else ""
        write_script(os.path.join(tmp, "run"), f"{redirect}exec {command}\n")
        if log_root:
            logs = os.path.join(log_root, name)
            os.makedirs(logs)
            os.makedirs(os.path.join(tmp, "log"))
            write_script(os.path.join(tmp, "log", "run"), f"exec {logger} {logs}\n")
        os.rename(tmp, os.path.join(scan, name))  # appears complete
    return scan


def kill_manager(proc: subprocess.Popen[bytes] | None, tag: str) -> None:
    """Cleanup of a peer manager after a failure: the manager, then what it left of ``tag``."""
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)
    kill_tagged(tag)


# --- subreaper ----------------------------------------------------------------------

def become_subreaper() -> bool:
    """Make this process the reaper of orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``).

    Daemonized processes (the sysvinit scripts' ``setsid cmd &``) are orphaned at
    once; on this machine PID 1 reaps orphans only every few seconds, so their
    zombies would linger. The benchmarks do not wait on zombies (they count as
    gone), but a subreaper that reaps at once keeps the process table small, as
    the perf baselines did.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def run_under_reaper(argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Run ``argv`` as our child while we, a subreaper, reap every orphan it leaves.

    Python's ``subprocess`` waits for its own children by pid; a reaper thread
    calling ``waitpid(-1)`` in the same process would steal their exit statuses.
    So the benchmark runs in a child and this (otherwise idle) parent reaps.
    """
    become_subreaper()
    child = subprocess.Popen(list(argv), env=env)
    rc: int | None = None
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGINT)
            continue
        if pid == child.pid:
            rc = os.waitstatus_to_exitcode(status)
            child.returncode = rc
            # Orphans of the run may still be exiting: reap what is ready, then leave.
            end = time.monotonic() + 2.0
            while time.monotonic() < end:
                try:
                    pid2, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid2 == 0:
                    time.sleep(0.05)
            break
    return rc if rc is not None else 1


# --- measurement --------------------------------------------------------------------

@dataclass
class Row:
    """One result line: benchmark, case, value(s), target and verdict."""

    bench: str
    case: str
    n: int | None
    seconds: float | None = None
    ratio: float | None = None
    ratio_to: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for latest.json."""
        return {k: v for k, v in self.__dict__.items()}


def median_of(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Per key, the median over ``runs`` (the samples of one side of a comparison)."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def fit_exponent(ns: Sequence[float], ts: Sequence[float]) -> float | None:
    """Least-squares slope of log t over log N: 1 = linear, 2 = quadratic."""
    pts = [(math.log(n), math.log(t)) for n, t in zip(ns, ts, strict=True) if n > 0 and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def free_port_block(count: int, lo: int = 20000, hi: int = 32700) -> int:
    """The first port of ``count`` consecutive free ports on 127.0.0.1 (bounded search)."""
    base = lo
    for _ in range(200):
        socks = []
        ok = True
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    base = port + 1
                    s.close()
                    break
                socks.append(s)
        finally:
            for s in socks:
                s.close()
        if ok:
            return base
        if base + count > hi:
            break
    raise RuntimeError(f"no block of {count} free ports in {lo}-{hi}")


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": mem,
        "kernel": platform.release(),
        "os": _os_name(),
        "python": sys.version.split()[0],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "user": "root" if os.geteuid() == 0 else "unprivileged",
    }


def _os_name() -> str:
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def dump_json(path: str, data: Any) -> None:
    """Write JSON atomically."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
