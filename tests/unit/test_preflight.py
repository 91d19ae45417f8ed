"""The pre-flight checks one by one, on real files, accounts and activators.

The end-to-end proof that a failed pre-flight stops nothing is
``tests/faults/test_preflight.py``; here each rule is checked on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from procmgmt.backends.base import Tool, missing_tools
from procmgmt.backends.bsdrc import BSDRCActivator
from procmgmt.backends.cygrunsrv import CygrunsrvActivator
from procmgmt.backends.launchd import LaunchdActivator
from procmgmt.backends.sysvinit import SysVInitActivator
from procmgmt.deploy import preflight
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings, resolve


def _settings(tmp_path: Path) -> Settings:
    return resolve({"state_dir": str(tmp_path / "state"),
                             "force_disable_user_change": True})


def _proc(name: str = "web", **kwargs: object) -> DeployedProcess:
    return DeployedProcess(name=name, hash=name, path="/nonexistent", rank=0,
                           **kwargs)  # type: ignore[arg-type]


def test_missing_tools_names_each_with_its_hint(tmp_path: Path) -> None:
    present = tmp_path / "rc.subr"
    present.write_text("")
    tools = [Tool("rc.subr", str(present)), Tool("rc.subr", str(tmp_path / "nope"), "hint"),
             Tool("sh", "sh"), Tool("frobnicator", "frobnicator-does-not-exist")]
    assert missing_tools(tools) == [
        f"rc.subr not found ({tmp_path / 'nope'}): hint",
        "frobnicator not found ('frobnicator-does-not-exist' on PATH)"]


def test_each_backend_declares_its_tools(tmp_path: Path) -> None:
    """bsdrc: the rc.subr of every script; launchd: launchctl; cygrunsrv: the executable
    PROCMGMT_CYGRUNSRV names; sysvinit: nothing. A runner standing in for the system
    (tests recording plans) needs no tool."""
    settings = _settings(tmp_path)
    gen = Generation("bsdrc", "", (_proc("a", extra={"rc_subr": "/x/rc.subr"}), _proc("b")))
    tools = BSDRCActivator(settings).required_tools(gen)
    assert sorted(t.path for t in tools) == ["/etc/rc.subr", "/x/rc.subr"]
    assert BSDRCActivator(settings, runner=lambda argv: None).required_tools(gen) == []  # type: ignore[arg-type,return-value]
    assert [t.path for t in LaunchdActivator(settings).required_tools(gen)] == ["launchctl"]
    cyg = CygrunsrvActivator(settings, environ={"PROCMGMT_CYGRUNSRV": "/opt/cyg/cygrunsrv"})
    assert [t.path for t in cyg.required_tools(gen)] == ["/opt/cyg/cygrunsrv"]
    assert SysVInitActivator(settings).required_tools(gen) == []


def test_executables(tmp_path: Path) -> None:
    """Absolute paths must exist, be regular files and executable; bare names are
    looked up on the process's own PATH first."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    plain = tmp_path / "plain"
    plain.write_text("")
    plain.chmod(0o644)
    ok = [_proc("a", executables=(sys.executable,)),
          _proc("b", executables=("mytool",), search_path=str(bindir)),
          _proc("c", executables=("sh",))]
    assert preflight.executable_problems(ok) == []
    bad = [_proc("d", executables=("/bin/sleeep",)),
           _proc("e", executables=(str(plain),)),
           _proc("f", executables=(str(tmp_path),)),
           _proc("g", executables=("no-such-tool-anywhere",), search_path=str(bindir))]
    problems = preflight.executable_problems(bad)
    assert problems[0] == "d: executable /bin/sleeep does not exist"
    assert problems[1] == f"e: {plain} is not executable (mode -rw-r--r--)"
    assert problems[2] == f"f: executable {tmp_path} is not a regular file"
    assert problems[3].startswith("g: executable 'no-such-tool-anywhere' not found on its "
                                  f"PATH ({bindir}")


def test_declared_ports() -> None:
    """Readiness TCP/HTTP ports on this machine and the port metadata; not a remote host."""
    p = _proc(readiness={"kind": "http", "url": "http://localhost:8080/h"},
              metadata={"port": 5000, "admin_port": 5001, "dns_name": "x"})
    assert preflight.declared_ports(p) == [5000, 5001, 8080]
    remote = _proc(readiness={"kind": "tcp", "port": 5432, "host": "db.example.org"})
    assert preflight.declared_ports(remote) == []
    assert preflight.declared_ports(_proc(readiness={"kind": "tcp", "port": 5432})) == [5432]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: directories owned by root")
def test_directories_a_new_service_user_cannot_traverse(tmp_path: Path) -> None:
    """A state dir under a 0700 parent: the service user (new, or existing) cannot reach
    its pid file or working directory; under a 0755 parent it can."""
    base = Path("/tmp") / f"procmgmt-preflight-{os.getpid()}"
    private = base / "private"
    try:
        private.mkdir(parents=True)
        base.chmod(0o755)
        private.chmod(0o700)
        (private / "state").mkdir(mode=0o755)
        state = private / "state"
        proc = _proc(user="pmnewuser", pid_file=str(state / "tmp" / "web.pid"),
                     directory=str(state / "lib"), executables=("/bin/sleep",),
                     credentials={"users": {"pmnewuser": {"group": "pmnewuser"}},
                                  "groups": {"pmnewuser": {}}})
        problems = preflight.directory_problems([proc])
        assert problems == [
            f"web: user pmnewuser cannot reach its working directory {state / 'lib'}: no "
            f"search permission on {private} (drwx------ root:root); choose a state dir "
            "everyone can traverse (e.g. not under /root) or grant o+x",
            f"web: user pmnewuser cannot reach its pid file's directory {state / 'tmp'}: no "
            f"search permission on {private} (drwx------ root:root); choose a state dir "
            "everyone can traverse (e.g. not under /root) or grant o+x"]
        # An existing user ('nobody') is judged by its own uid and groups.
        nobody = _proc(user="nobody", pid_file=str(state / "web.pid"))
        assert len(preflight.directory_problems([nobody])) == 1
        private.chmod(0o711)
        assert preflight.directory_problems([proc, nobody]) == []
        # Root and processes without a user are never judged.
        assert preflight.directory_problems([_proc(user="root", directory=str(private)),
                                             _proc(directory=str(private))]) == []
    finally:
        for d in (private / "state", private, base):
            if d.exists():
                d.rmdir()
