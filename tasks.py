#!/usr/bin/env python3
"""Set-up and everyday tasks, with nothing but Python 3.11+ installed.

    python3 tasks.py demo    # deploy examples/webapps with supervisord as you, print the URLs
    python3 tasks.py test    # lint, type-check and run the whole test suite
    python3 tasks.py undeploy  # stop what the demo started

Each task creates (or reuses) the virtual environment ``.venv`` next to this
file and installs procmgmt into it, pinned by ``constraints.txt``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
MARKER = VENV / ".procmgmt-installed"


def sh(*argv: str | Path, check: bool = True, **kw: object) -> int:
    """Run a command, echoing it."""
    print("+ " + " ".join(str(a) for a in argv), flush=True)
    return subprocess.run([str(a) for a in argv], check=check, **kw).returncode  # type: ignore[call-overload]


def ensure_venv(extras: str) -> None:
    """Create .venv and install procmgmt (with ``extras``) unless already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py may be run by an older python3)
        sys.exit(f"procmgmt needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    wanted = f"{extras}:{(ROOT / 'pyproject.toml').stat().st_mtime}:" \
             f"{(ROOT / 'constraints.txt').stat().st_mtime}"
    if MARKER.exists() and MARKER.read_text() == wanted:
        return
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    sh(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
       "-c", ROOT / "constraints.txt", "-e", target)
    MARKER.write_text(wanted)


def demo_args() -> list[str]:
    """Settings of the demo: the current user's own state, never another user."""
    args = ["--process-manager", "supervisord", "--force-disable-user-change"]
    if os.geteuid() == 0:
        # Root would default to /var; the demo stays an unprivileged-style deployment.
        args += ["--state-dir", str(Path.home() / ".local" / "state" / "procmgmt")]
    return args


def demo() -> int:
    """Deploy examples/webapps with the embedded supervisord and print where to look."""
    ensure_venv("")
    model = ROOT / "examples" / "webapps" / "processes.py"
    sh(BIN / "procmgmt", "switch", *demo_args(), model)
    out = subprocess.run([str(BIN / "procmgmt"), "status", "--json", *demo_args()],
                         check=True, capture_output=True, text=True).stdout
    status = json.loads(out)
    print("\nDeployed. Try:")
    for proc in status["processes"]:
        port = proc.get("metadata", {}).get("port")
        if port:
            print(f"  curl http://127.0.0.1:{port}/      # {proc['name']}, pid {proc['pid']}")
    print(f"\nState dir:  {status['settings']['state_dir']}")
    print(f"Logs:       {status['settings']['log_dir']}")
    print(f"Status:     {BIN}/procmgmt status {' '.join(demo_args())}")
    print("Undeploy:   python3 tasks.py undeploy")
    return 0


def undeploy() -> int:
    """Stop what the demo deployed (state stays)."""
    ensure_venv("")
    return sh(BIN / "procmgmt", "switch", "--undeploy", *demo_args(), check=False)


def test(*pytest_args: str) -> int:
    """ruff, mypy, then pytest over the whole suite."""
    ensure_venv("test")
    sh(BIN / "ruff", "check", "src", "tests", "examples", "tasks.py", "bench", cwd=ROOT)
    sh(BIN / "mypy", cwd=ROOT)
    return sh(BIN / "python", "-m", "pytest", *pytest_args, cwd=ROOT, check=False)


TASKS = {"demo": demo, "test": test, "undeploy": undeploy}


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TASKS:
        print(__doc__)
        return 2
    try:
        return TASKS[argv[1]](*argv[2:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
