"""procmgmt's own s6-svscan of a profile: started on demand, found again, shut down.

One s6-svscan per (state dir, profile) over ``<procmgmt_dir>/s6/<profile>/scan``.
It runs in the foreground in a session of its own (procmgmt does not wait for
it: it outlives the command that started it, as the embedded supervisord
does); its pid is recorded in the runtime dir, and a running one is
recognised by its command line (``s6-svscan ... <scan dir>``) so a second is
never started for the same scan dir. ``-c`` (the most services it
supervises, loggers count) is sized for the generation: past it, new service
directories are silently ignored, so a larger generation restarts it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

from procmgmt import fsutil
from procmgmt.errors import DeployError
from procmgmt.model.spec import SYSTEM_PATH
from procmgmt.pids import pid_alive

#: s6 tools are looked up here first (Debian: /usr/bin), then on PATH.
TOOL_DIRS = ("/usr/bin", "/bin")

#: s6-svscan processes this process started and must reap (they are its children).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def tool(name: str) -> str:
    """An s6 program by absolute path (``name`` when it is nowhere: the pre-flight says so)."""
    for directory in TOOL_DIRS:
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name) or name


def max_services(processes: int) -> int:
    """``-c`` for N processes: each has a logger (two supervisors), with room to grow."""
    return max(64, 4 * processes + 16)


def environment() -> dict[str, str]:
    """What s6-svscan (and so every run script) inherits: a fixed PATH that finds the
    s6 tools, locale, HOME, TZ; not the caller's whole environment."""
    keep = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = SYSTEM_PATH
    return env


def reads_scan_dir(pid: int, scan_dir: str) -> bool | None:
    """Whether ``pid`` is an s6-svscan of ``scan_dir``; None when unknown (no /proc)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return None
    argv = [a for a in argv if a]
    return bool(argv) and os.path.basename(argv[0]) == b"s6-svscan" \
        and argv[-1] == os.fsencode(scan_dir)


def read_pid(pid_file: str) -> int | None:
    """The pid recorded when s6-svscan was started, if any."""
    try:
        with open(pid_file, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def find_running(pid_file: str, scan_dir: str) -> list[int]:
    """PIDs of the s6-svscan processes of ``scan_dir`` (pid file, then /proc)."""
    found = set()
    pid = read_pid(pid_file)
    if pid is not None and pid_alive(pid) and reads_scan_dir(pid, scan_dir) is not False:
        found.add(pid)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return sorted(found)
    for entry in entries:
        if entry.isdigit() and reads_scan_dir(int(entry), scan_dir) and pid_alive(int(entry)):
            found.add(int(entry))
    return sorted(found)


def start(scan_dir: str, pid_file: str, log_file: str, services: int) -> int:
    """Start s6-svscan over ``scan_dir`` and wait until it reads its control FIFO
    (``s6-svscanctl -z`` succeeds); its pid."""
    fsutil.ensure_dir(os.path.dirname(log_file))
    log_fd = fsutil.open_file(log_file, fsutil.LOG, os.O_WRONLY | os.O_APPEND)
    try:
        proc = subprocess.Popen([tool("s6-svscan"), "-c", str(max_services(services)), scan_dir],
                                stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd,
                                env=environment(), start_new_session=True, cwd="/",
                                umask=fsutil.SERVICE_UMASK)
    finally:
        os.close(log_fd)
    _CHILDREN[proc.pid] = proc
    fsutil.write_atomic(pid_file, f"{proc.pid}\n", fsutil.FILE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DeployError(f"s6-svscan of {scan_dir} exited at once (status "
                              f"{proc.returncode}); see {log_file}")
        if control(scan_dir, "-z"):
            return proc.pid
        time.sleep(0.01)
    stop_pid(proc.pid, 5)
    raise DeployError(f"s6-svscan of {scan_dir} did not open its control FIFO within 10 s")


def control(scan_dir: str, *flags: str) -> bool:
    """``s6-svscanctl FLAGS scan_dir``; True when it succeeded."""
    return subprocess.run([tool("s6-svscanctl"), *flags, scan_dir], check=False,
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def stop_pid(pid: int, timeout: float) -> None:
    """Wait for s6-svscan ``pid`` to exit (after ``s6-svscanctl -t``), killing it
    past ``timeout``; reap it when it is our child."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout)
