"""Fault tests: the transactional switch under failing, crashing and concurrent switches.

Helpers shared by the fault tests. They check the outcome *independently* of
the code under test: processes are found by scanning ``/proc/*/environ`` for
the deployment marker (``PROCMGMT_DEPLOYMENT=<state dir>:<profile>``), not by
asking procmgmt, and HTTP answers come from real sockets.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from procmgmt.cli.main import main as procmgmt_main
from procmgmt.deploy.engine import CRASH_ENV
from tests.e2e.util import REPO, http_get, kill_leftovers, port_closed, wait_http

MODELS = Path(__file__).resolve().parent / "models"
WEBAPPS = REPO / "examples" / "webapps"
SIMPLE = WEBAPPS / "processes.py"
ADVANCED = WEBAPPS / "processes-advanced.py"
#: Process names of examples/webapps/processes.py and their port offsets.
SIMPLE_PORTS = {"webapp": 0, "webapp1": 1}
#: ... and of processes-advanced.py.
ADVANCED_PORTS = {f"webapp{i}": i for i in range(1, 7)}
PROFILE = "processes"


class Cli:
    """Runs procmgmt commands for one state dir, backend and set of extra params.

    ``fresh=True`` runs ``python -m procmgmt`` in a new process: that is how the
    commands under test run (a switch that must be killed, a repair that must
    find everything on disk). Setup and checks run ``procmgmt.cli.main.main``
    in this process, the same code without the interpreter start-up (about
    half a second per call), which keeps the fault suite fast. The crash hook
    only ever reaches a fresh process: it is passed in ``env``, never set here.
    """

    def __init__(self, state: Path, backend: str, extra_params: Mapping[str, object],
                 cwd: Path) -> None:
        self.state = state
        self.backend = backend
        self.extra_params = json.dumps(dict(extra_params))
        self.cwd = cwd

    def argv(self, *args: str | Path) -> list[str]:
        """Command line (after ``procmgmt``) of a command of this deployment."""
        return [str(args[0]), "--state-dir", str(self.state), "-P", self.backend,
                "--force-disable-user-change", "--extra-params", self.extra_params,
                *[str(a) for a in args[1:]]]

    def __call__(self, *args: str | Path, check: bool = True, fresh: bool = False,
                 env: Mapping[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*args)
        if fresh:
            proc = subprocess.run([sys.executable, "-m", "procmgmt", *argv],
                                  capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, **(env or {})}, cwd=self.cwd,
                                  check=False)
        else:
            assert not env and CRASH_ENV not in os.environ, "the crash hook would kill pytest"
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = procmgmt_main(argv)
            proc = subprocess.CompletedProcess(argv, rc, out.getvalue(), err.getvalue())
        if check and proc.returncode != 0:
            raise AssertionError(f"procmgmt {args[0]} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc


def marker(state: Path, profile: str = PROFILE) -> str:
    """The value of PROCMGMT_DEPLOYMENT every process of the deployment carries."""
    return f"{state}:{profile}"


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def marked(state: Path, profile: str = PROFILE) -> dict[int, str]:
    """pid -> PROCMGMT_PROCESS of every live process carrying the deployment's marker."""
    want = marker(state, profile)
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        env = _environ(int(entry))
        if env.get("PROCMGMT_DEPLOYMENT") == want and _alive(int(entry)):
            found[int(entry)] = env.get("PROCMGMT_PROCESS", "?")
    return found


def marked_names(state: Path, profile: str = PROFILE) -> set[str]:
    """The process names that have at least one live marked process."""
    return set(marked(state, profile).values())


def wait_marked_names(state: Path, expected: set[str], timeout: float = 10.0) -> set[str]:
    """Wait until the marked process names are exactly ``expected``; the last seen set."""
    deadline = time.monotonic() + timeout
    while True:
        names = marked_names(state)
        if names == expected or time.monotonic() > deadline:
            return names
        time.sleep(0.05)


def generations(run: Cli) -> list[tuple[int, bool]]:
    """(number, current) of every generation from ``switch --list-generations``."""
    out = run("switch", "--list-generations").stdout
    rows = []
    for line in out.splitlines():
        if line.strip():
            rows.append((int(line.split()[0]), "(current)" in line))
    return rows


def assert_generations_consistent(run: Cli, current: int | None) -> None:
    """Generation numbers are 1..N without gaps and exactly ``current`` is marked current."""
    rows = generations(run)
    numbers = [n for n, _ in rows]
    assert numbers == list(range(1, len(rows) + 1)), f"generation numbers not contiguous: {rows}"
    currents = [n for n, cur in rows if cur]
    expected = [current] if current is not None else []
    assert currents == expected, f"current generation is {currents}, expected {expected}"


def status(run: Cli) -> dict[str, object]:
    """``procmgmt status --json`` as a dict."""
    out = run("status", "--json", check=False).stdout
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def running_pids(run: Cli) -> dict[str, int | None]:
    """name -> pid of the current generation's processes (per procmgmt status)."""
    rows = status(run)["processes"]
    assert isinstance(rows, list)
    return {str(r["name"]): r["pid"] for r in rows}


def assert_serves(base: int, ports: dict[str, int]) -> None:
    """Every named webapp answers on base + offset with a page naming itself."""
    for name, offset in ports.items():
        body = wait_http(base + offset)
        assert f"instance: {name}" in body, body


def assert_silent(base: int, ports: dict[str, int]) -> None:
    """Nothing answers on the ports of the named webapps."""
    for name, offset in ports.items():
        assert port_closed(base + offset), f"{name} still answers on port {base + offset}"
        assert http_get(base + offset, timeout=0.5) is None


def cleanup(run: Cli, state: Path) -> list[int]:
    """Undeploy, then SIGKILL (by PID) whatever still mentions the state dir; PIDs killed.

    Runs in ``finally`` blocks, so a failing test does not leave processes behind.
    """
    with contextlib.suppress(Exception):
        run("switch", "--undeploy", check=False, timeout=60)
    killed = kill_leftovers(str(state))
    for pid in marked(state):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed
