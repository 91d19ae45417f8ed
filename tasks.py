#!/usr/bin/env python3
"""Set-up and everyday tasks, with nothing but Python 3.11+ installed.

    python3 tasks.py demo    # deploy examples/webapps with supervisord as you, print the URLs
    python3 tasks.py test    # lint, type-check and run the whole test suite
    python3 tasks.py test --fast  # the same without end-to-end tests (under 2 minutes)
    python3 tasks.py undeploy  # stop what the demo started

Each task creates (or reuses) the virtual environment ``.venv`` next to this
file and installs procmgmt into it, pinned by ``constraints.txt``.

``test`` run as root on Debian first installs the system packages the suite
needs (tests/_lanes.py lists them); run as another user it skips the tests
that need root or a missing program, and its last line counts those skips
and names the command that would run them.
"""

from __future__ import annotations

import json
import os
import shlex
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
    print("+ " + shlex.join(str(a) for a in argv), flush=True)
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


def debian_packages() -> tuple[str, ...]:
    """The Debian packages the test suite needs (one list, kept with the tests' tool table)."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests._lanes import DEBIAN_PACKAGES
    finally:
        sys.path.remove(str(ROOT))
    return DEBIAN_PACKAGES


def missing_packages(packages: tuple[str, ...]) -> list[str]:
    """Those of ``packages`` dpkg does not report as installed."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n",
                          *packages], capture_output=True, text=True, check=False).stdout
    installed = {line.split()[0] for line in out.splitlines()
                 if line.endswith(" installed")}
    return [p for p in packages if p not in installed]


POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def install_system_packages() -> None:
    """As root on Debian: apt-get install what the suite needs, if anything is missing.

    A no-op (one dpkg-query) when everything is there. Installing must not start
    the servers (nginx or Apache would bind 0.0.0.0:80): a policy-rc.d that denies
    every start is in place during the install, and removed again if it was ours.
    """
    if os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        return
    missing = missing_packages(debian_packages())
    if not missing:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ours = not POLICY_RC_D.exists()
    if ours:
        POLICY_RC_D.write_text("#!/bin/sh\n# procmgmt tasks.py test: start no service\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        sh("apt-get", "update", "-q", env=env, stdout=subprocess.DEVNULL)
        sh("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, env=env,
           stdout=subprocess.DEVNULL)
    finally:
        if ours and os.environ.get("CI") != "true":
            POLICY_RC_D.unlink(missing_ok=True)


#: pytest-xdist workers of ``test``: the end-to-end tests mostly wait (for
#: services to start and stop): on two cores the suite kept 1.15 cores busy
#: in two workers, so three run side by side.
WORKERS = "3"


def workers(pytest_args: list[str]) -> list[str]:
    """``-n WORKERS`` unless the arguments choose the workers (``-n``, ``-p no:xdist``)."""
    def chooses(arg: str) -> bool:
        return (arg in ("-n", "--numprocesses", "no:xdist", "-pno:xdist")
                or arg.startswith("--numprocesses=")
                or (arg.startswith("-n") and arg[2:].isalnum()))

    return [] if any(chooses(a) for a in pytest_args) else ["-n", WORKERS]


def test(*args: str) -> int:
    """ruff, mypy, then pytest: the whole suite, or with --fast the fast lane (no e2e).

    Further arguments go to pytest (``-n 0`` runs it in one process).
    """
    fast = "--fast" in args
    pytest_args = [a for a in args if a != "--fast"]
    install_system_packages()
    ensure_venv("test")
    sh(BIN / "ruff", "check", "src", "tests", "examples", "tasks.py", "bench", cwd=ROOT)
    sh(BIN / "mypy", cwd=ROOT)
    lane = ["-m", "not e2e"] if fast else []
    return sh(BIN / "python", "-m", "pytest", *workers(pytest_args), *lane, *pytest_args,
              cwd=ROOT, check=False)


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
