"""BSD rc backend: stop and reload signal the pid from the pid file only when it
belongs to the service's user (the generated ``<name>_trusted`` function, set as
``stop_precmd`` and ``reload_precmd``).

rc.subr runs ``${rc_arg}_precmd`` for stop and reload after it found the pid
(``rc_pid``) and before it sends the signal; a failing precmd ends the command
with status 1 unless the ``force`` prefix was given. ``fake_rc_subr.sh``
follows that reading of FreeBSD's rc.subr, and the first test checks the
stand-in itself; the others run a generated script as root for a service
running as ``nobody``, with a root-owned ``/bin/sleep`` written into its pid
file.

What the root tests prove and what they do not: the script refuses before
anything is signalled (no "Stopping" line, a warning naming the pid file) and
the root process survives. rc.subr sends the signal through
``su -m <user>``, so without the check the kill would also fail (as
``nobody``, with EPERM): the test without the precmd shows that difference,
and that it is the precmd that makes the refusal, not the su layer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from procmgmt.backends._activation import pid_alive
from procmgmt.backends.base import BuildContext
from procmgmt.backends.bsdrc import BSDRCBackend
from procmgmt.model.spec import ProcessSpec
from tests.backends.test_bsdrc import (
    FAKE_RC_SUBR,
    script_of,
    tmp_settings,
    with_fake_rc_subr,
    write,
)

SERVICE_USER = "nobody"


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def real_uid(pid: int) -> int:
    """The real uid of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


@contextlib.contextmanager
def root_sleep() -> Iterator[subprocess.Popen[bytes]]:
    """A root-owned ``/bin/sleep`` in its own session: its command line matches the
    service's procname, so rc.subr's pid check accepts it. Killed by pid afterwards."""
    proc = subprocess.Popen(["/bin/sleep", "300"], start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 9)
        proc.wait()


# --- the stand-in rc.subr runs stop/reload pre- and postcmds like rc.subr ------------

PROBE = """#!/bin/sh
. {fake}
name=probe
rcvar=probe_enable
command=/bin/sleep
pidfile={pid_file}
sig_reload=CONT
stop_precmd=probe_pre
stop_postcmd=probe_post
reload_precmd=probe_pre
reload_postcmd=probe_post
probe_pre()
{{
	echo "pre $rc_pid" >>{log}
	[ ! -e {deny} ]
}}
probe_post()
{{
	echo post >>{log}
	return "${{PROBE_POST_RC:-0}}"
}}
run_rc_command "$1"
"""


@pytest.mark.e2e
def test_the_fake_rc_subr_runs_stop_and_reload_precmds_like_rc_subr(tmp_path: Path) -> None:
    """No pid: no precmd. A failing precmd ends stop/reload with status 1 before
    the signal ('force' ignores the failure); the postcmd runs after the signal
    and its status is the command's."""
    pid_file, log, deny = tmp_path / "probe.pid", tmp_path / "log", tmp_path / "deny"
    script = tmp_path / "probe"
    script.write_text(PROBE.format(**{k: shlex.quote(str(v)) for k, v in {
        "fake": FAKE_RC_SUBR, "pid_file": pid_file, "log": log, "deny": deny}.items()}))
    script.chmod(0o755)
    env = {**os.environ, "PROCMGMT_FAKE_RC_CONF": str(tmp_path / "rc.conf")}
    env.pop("PROCMGMT_FAKE_SU", None)

    def rc(command: str, **extra: str) -> subprocess.CompletedProcess[str]:
        log.unlink(missing_ok=True)
        return subprocess.run([str(script), command], capture_output=True, text=True,
                              env={**env, **extra}, timeout=60, check=False)

    def logged() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    r = rc("onestop")
    assert r.returncode == 1 and "not running?" in r.stderr and logged() == []

    with root_sleep() as target:
        pid_file.write_text(f"{target.pid}\n")
        deny.touch()
        for command in ("onestop", "onereload"):
            r = rc(command)
            assert r.returncode == 1, r
            assert logged() == [f"pre {target.pid}"], command
            assert "Stopping" not in r.stdout
            assert target.poll() is None
        deny.unlink()
        r = rc("onereload", PROBE_POST_RC="3")
        assert r.returncode == 3 and logged() == [f"pre {target.pid}", "post"], r
        deny.touch()
        r = rc("forcestop")
        assert r.returncode == 0 and "Stopping probe." in r.stdout, r
        assert logged() == [f"pre {target.pid}", "post"]
        assert target.wait(timeout=10) is not None


# --- generated scripts, run as root for a service running as nobody ------------------

STARTER = """#!/bin/sh
# Daemonizes /bin/sleep and writes its pid, as the service user.
setsid /bin/sleep 300 </dev/null >/dev/null 2>&1 &
echo $! >{pid_file}
"""


@dataclass
class Service:
    """A generated rc script whose process runs as :data:`SERVICE_USER`."""

    script: Path
    pid_file: Path
    env: dict[str, str]
    started: list[int] = dataclasses.field(default_factory=list)

    def rc(self, command: str) -> subprocess.CompletedProcess[str]:
        """Run the script with ``command``, as root."""
        return subprocess.run([str(self.script), command], capture_output=True, text=True,
                              env=self.env, timeout=60, check=False)

    def start(self) -> int:
        """onestart; the pid it wrote (remembered for the clean-up)."""
        r = self.rc("onestart")
        assert r.returncode == 0, r
        pid = int(self.pid_file.read_text().split()[0])
        self.started.append(pid)
        assert real_uid(pid) == pwd.getpwnam(SERVICE_USER).pw_uid
        return pid


def render_service(root: Path, *, without_precmds: bool = False) -> Service:
    """Generate the rc script of a daemon running as the service user, sourcing the
    stand-in rc.subr; ``without_precmds`` deletes the stop/reload precmd lines
    from the generated text (to show what the check changes)."""
    user = pwd.getpwnam(SERVICE_USER)
    run = root / "run"
    run.mkdir(mode=0o755)
    os.chown(run, user.pw_uid, user.pw_gid)
    pid_file = run / "srv.pid"
    starter = root / "starter"
    starter.write_text(STARTER.format(pid_file=shlex.quote(str(pid_file))))
    starter.chmod(0o755)
    spec = with_fake_rc_subr(ProcessSpec(
        name="srv", description="srv", daemon=str(starter), pid_file=str(pid_file),
        pid_file_program="/bin/sleep", user=SERVICE_USER))
    settings = tmp_settings(root, privileged=True)
    files, _ = BSDRCBackend().render_process(spec, BuildContext(settings, {"srv": spec}))
    text = script_of(files).content or ""
    assert ': "${srv_user:=nobody}"' in text.splitlines()
    precmds = ["stop_precmd=srv_trusted", "reload_precmd=srv_trusted"]
    for line in precmds:
        assert line in text.splitlines(), line
    write(files, root / "entry")
    script = root / "entry" / script_of(files).path
    if without_precmds:
        kept = [line for line in text.splitlines() if line not in precmds]
        script.write_text("\n".join(kept) + "\n")
    env = {**os.environ, "PROCMGMT_FAKE_RC_CONF": str(root / "rc.conf"),
           # su -m runs the command with $SHELL (nobody's own shell is nologin)
           "SHELL": "/bin/sh"}
    env.pop("PROCMGMT_FAKE_SU", None)
    return Service(script, pid_file, env)


@pytest.fixture
def service_root() -> Iterator[Path]:
    """A directory the service user can traverse (pytest's tmp_path is root-only)."""
    root = Path(tempfile.mkdtemp(prefix="pm-bsdrc-trust-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    """``service``; every pid it started is killed afterwards, by pid."""
    try:
        yield service
    finally:
        for pid in service.started:
            if pid_alive(pid):
                os.kill(pid, 9)


def assert_refused(r: subprocess.CompletedProcess[str], service: Service, pid: int) -> None:
    """rc.subr stopped at the precmd: status 1, the warning, no signal attempted."""
    assert r.returncode == 1, r
    assert f"not trusting {service.pid_file}: pid {pid} belongs to uid 0" in r.stderr, r
    assert "Stopping" not in r.stdout, r


@pytest.mark.e2e
@pytest.mark.root("runs the service as the account nobody")
def test_a_pid_file_naming_a_root_process_is_not_signalled(service_root: Path) -> None:
    """The service user can write its pid file: with the pid of a root process in
    it, stop and reload refuse and signal nothing, the root process and the
    service keep running; with the service's pid back, stop stops it."""
    with running(render_service(service_root)) as service, root_sleep() as victim:
        pid = service.start()
        service.pid_file.write_text(f"{victim.pid}\n")
        assert_refused(service.rc("onestop"), service, victim.pid)
        assert_refused(service.rc("onereload"), service, victim.pid)
        time.sleep(0.2)
        assert victim.poll() is None, "the root process was signalled"
        assert pid_alive(pid)

        service.pid_file.write_text(f"{pid}\n")
        r = service.rc("onestop")
        assert r.returncode == 0 and "Stopping srv." in r.stdout, r
        assert "not trusting" not in r.stderr
        assert wait_gone(pid), "onestop left the service running"
        assert victim.poll() is None


@pytest.mark.e2e
@pytest.mark.root("runs the service as the account nobody")
def test_the_service_own_pid_is_signalled(service_root: Path) -> None:
    """A pid file with the service's own pid passes the check: reload sends HUP
    (sleep's default action for it is to exit, which shows it arrived) and stop
    stops the process."""
    with running(render_service(service_root)) as service:
        pid = service.start()
        r = service.rc("onereload")
        assert r.returncode == 0 and "not trusting" not in r.stderr, r
        assert wait_gone(pid), "reload did not signal the service"

        pid = service.start()
        r = service.rc("onestop")
        assert r.returncode == 0 and "Stopping srv." in r.stdout, r
        assert "not trusting" not in r.stderr
        assert wait_gone(pid), "onestop left the service running"


@pytest.mark.e2e
@pytest.mark.root("runs the service as the account nobody")
def test_without_the_precmd_the_root_pid_reaches_the_kill(service_root: Path) -> None:
    """The same script with the stop/reload precmd lines deleted: rc.subr goes on
    to signal the root process (through su as nobody, which fails with EPERM).
    So the refusal above comes from the precmd, and the assertions there fail
    when it is missing."""
    with running(render_service(service_root, without_precmds=True)) as service, \
            root_sleep() as victim:
        pid = service.start()
        service.pid_file.write_text(f"{victim.pid}\n")
        r = service.rc("onestop")
        assert "Stopping srv." in r.stdout, r
        assert "not trusting" not in r.stderr
        assert r.returncode != 0
        assert victim.poll() is None
        service.pid_file.write_text(f"{pid}\n")
        assert service.rc("onestop").returncode == 0
        assert wait_gone(pid)
