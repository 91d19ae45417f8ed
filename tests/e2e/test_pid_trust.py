"""Root deploys on a shared machine: pid files and logs that others can write
cannot steer what root signals or writes (docs/security.md, "Pid files" and
"Symlinks").

Each test deploys as root with a second, throw-away non-root account as the
attacker (created with useradd, deleted afterwards), and a root-owned
``sleep`` as the victim: a process neither the attacker nor the service
may have signalled. Under sysvinit the webapps run as daemons (the
generated script and procmgmt read the pid file the daemon writes);
under supervisord the model has an ``initialize`` step, so the foreground
proxy runs as root and wraps the daemon (``webapp_mode=daemon``), reading
the pid file the daemon wrote as its user: both are the set-ups where root
acts on a pid file a service user can write.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_root import BACKENDS, Env, root_env
from tests.e2e.util import http_get, kill_uid, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.root]

#: One daemonized webapp running as its own user; ``initialize`` makes the
#: supervisord proxy run as root (it would run as the user otherwise).
MODEL = '''
import dataclasses
from constructors import webapp
from procmgmt import Instance

def processes(settings):
    base = int(settings.extra_params.get("port_base", 5000))
    app = webapp(settings)(port=base + 1, instance_suffix="1")
    return {"webapp1": Instance(dataclasses.replace(app, initialize="true"), port=base + 1)}
'''


@contextlib.contextmanager
def attacker() -> Iterator[pwd.struct_passwd]:
    """A throw-away non-root account, removed afterwards with its processes."""
    name = f"pmatk{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh",
                    "--user-group", name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        kill_uid(pwd.getpwnam(name).pw_uid)
        subprocess.run(["userdel", name], check=False, capture_output=True)


def as_user(user: str, script: str) -> subprocess.CompletedProcess[str]:
    """``sh -c script`` as ``user`` (all ids, no supplementary groups)."""
    pw = pwd.getpwnam(user)
    return subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                           "--clear-groups", "--", "/bin/sh", "-c", script],
                          capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A root-owned process nobody may make root signal."""
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def prepare(env: Env) -> Path:
    """The model, written into the examples dir (it imports the constructors)."""
    model = env.examples / "pidtrust.py"
    model.write_text(MODEL)
    model.chmod(0o644)
    return model


def switch(env: Env, model: Path, mode: str, *extra: str,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    params = json.dumps({"port_base": env.base, "webapp_mode": mode})
    return env.run("switch", model, "--extra-params", params, *extra, check=check)


def pid_file_candidates(env: Env) -> list[Path]:
    """Where webapp1's pid file is: its own directory, or (before) the shared tmp dir."""
    return [env.state / "run" / "procmgmt-pid" / "webapp1" / "webapp1.pid",
            env.state / "tmp" / "webapp1.pid"]


def test_service_user_cannot_make_root_signal_another_pid() -> None:
    """(a) The service user writes a root process's PID into its own pid file:
    undeploy does not signal it and says why, naming the pid file and the PID.
    (sysvinit: procmgmt reads the pid file when it stops the process. The
    supervisord proxy reads it once, right after its daemon wrote it: the
    next test covers that read.)"""
    with root_env("sysvinit") as env, victim() as sleeper:
        model = prepare(env)
        switch(env, model, "daemon")
        wait_http(env.base + 1)
        pid_file = next(p for p in pid_file_candidates(env) if p.exists())
        real = int(pid_file.read_text().split()[0])
        wrote = as_user("webapp1", f"echo {sleeper.pid} > '{pid_file}'")
        assert wrote.returncode == 0, wrote.stderr
        status = env.run("status", "--json", check=False)
        out = env.run("switch", "--undeploy", check=False)
        text = out.stdout + out.stderr + status.stderr
        assert alive(sleeper), f"root's pid {sleeper.pid} was signalled:\n{text}"
        assert str(sleeper.pid) in text and "not trusting" in text, text
        assert str(pid_file) in text, text
        with contextlib.suppress(ProcessLookupError):
            os.kill(real, 9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_planted_pid_file_neither_fakes_up_nor_kills(backend: str) -> None:
    """(b) A local user plants the pid file (the shared tmp dir, and tries the
    service's own pid directory) before the first deploy: the real service
    starts, status shows its PID, and undeploy kills nothing foreign."""
    with root_env(backend) as env, attacker() as atk, victim() as sleeper:
        model = prepare(env)
        env.run("init-state")
        planted = []
        for path in pid_file_candidates(env):
            r = as_user(atk.pw_name, f"mkdir -p '{path.parent}' 2>/dev/null; "
                                     f"echo {sleeper.pid} > '{path}'")
            if r.returncode == 0:
                planted.append(path)
        assert planted, "the attacker could plant nowhere: nothing was tested"
        assert pid_file_candidates(env)[0] not in planted, \
            "a local user could write the service's own pid directory"
        out = switch(env, model, "daemon")
        assert "listening on port" in (http_get(env.base + 1) or ""), out.stdout
        pids = env.pids()
        assert pids.get("webapp1") not in (None, sleeper.pid), pids
        env.run("switch", "--undeploy")
        assert alive(sleeper), f"root's pid {sleeper.pid} was signalled by the undeploy"
        assert http_get(env.base + 1) is None, "the real service was not stopped"


#: Backends whose logger writes into a directory named after the process.
LOG_ENTRY = {"runit": "webapp1", "s6": "webapp1"}

@pytest.mark.parametrize("backend", BACKENDS)
def test_log_symlinks_are_not_followed(backend: str, tmp_path: Path) -> None:
    """(c) A local user links the log path to a file in a root-only directory:
    in the shared tmp dir (where logs of user-switching processes went) and in
    a shared --log-dir. Root's deploy creates and writes neither target; with
    the shared log dir the deploy fails with an error naming the symlink."""
    with root_env(backend) as env, attacker() as atk:
        model = prepare(env)
        secret = env.root / "root-only"
        secret.mkdir(mode=0o700)
        env.run("init-state")
        shared = env.root / "shared-log"
        shared.mkdir()
        shared.chmod(0o1777)
        # Where the backend keeps webapp1's log in --log-dir: a file, or the
        # directory of a logger (svlogd, s6-log) that writes "current" in it.
        logged = shared / LOG_ENTRY.get(backend, "webapp1.log")
        links = {env.state / "tmp" / "webapp1.log": secret / "via-tmp",
                 logged: secret / "via-log-dir"}
        for link, target in links.items():
            r = as_user(atk.pw_name, f"ln -s '{target}' '{link}'")
            assert r.returncode == 0, r.stderr
        first = switch(env, model, "foreground", check=False)
        assert not (secret / "via-tmp").exists(), first.stdout + first.stderr
        if first.returncode == 0:
            env.run("switch", "--undeploy")
        out = switch(env, model, "foreground", "--log-dir", str(shared), check=False)
        text = out.stdout + out.stderr
        assert not (secret / "via-log-dir").exists(), text
        assert out.returncode != 0, text
        assert f"{logged} is a sym" in text, text  # a symlink / a symbolic link, not a dir
        assert "procmgmt does not write through it" in text, text


def test_sysvinit_script_refuses_a_foreign_pid() -> None:
    """(a) through the generated init script itself (as an administrator or init
    runs it): with a root PID in the service's pid file, ``stop`` and ``reload``
    signal nothing and say why; ``status`` says not running (3)."""
    with root_env("sysvinit") as env, victim() as sleeper:
        model = prepare(env)
        switch(env, model, "daemon")
        wait_http(env.base + 1)
        pid_file = next(p for p in pid_file_candidates(env) if p.exists())
        real = int(pid_file.read_text().split()[0])
        script = next((env.state / "lib" / "procmgmt" / "store").glob(
            "*-webapp1/etc/rc.d/init.d/webapp1"))
        wrote = as_user("webapp1", f"echo {sleeper.pid} > '{pid_file}'")
        assert wrote.returncode == 0, wrote.stderr
        try:
            for activity, rc in (("status", 3), ("reload", 7), ("stop", 0)):
                out = subprocess.run([str(script), activity], capture_output=True, text=True,
                                     timeout=60, check=False)
                text = out.stdout + out.stderr
                assert alive(sleeper), f"'{activity}' signalled root's pid:\n{text}"
                assert out.returncode == rc, f"{activity}: {out.returncode}\n{text}"
                assert f"not trusting {pid_file}: pid {sleeper.pid} belongs to uid 0" in text, \
                    text
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(real, 9)


def test_supervisord_proxy_does_not_forward_to_a_foreign_pid() -> None:
    """(a) under supervisord: the root proxy wraps a daemon that runs as the
    service user and writes a root process's PID into its pid file. The proxy
    must not adopt it (it would forward its stop signal to it as root): it
    reports the PID and gives up waiting for a pid of its own."""
    from procmgmt.backends.shared import proxy

    if os.geteuid() != 0:
        pytest.skip("needs root: the proxy drops to another user")
    with attacker() as atk, victim() as sleeper, \
            tempfile.TemporaryDirectory(prefix="procmgmt-proxy-", dir="/tmp") as tmp:
        tmp_path = Path(tmp)  # under /tmp: the service user must reach the pid dir
        tmp_path.chmod(0o755)
        run_dir = tmp_path / "run"
        run_dir.mkdir(mode=0o755)
        pid_dir = run_dir / "svc"
        pid_dir.mkdir(mode=0o755)
        os.chown(pid_dir, atk.pw_uid, atk.pw_gid)
        pid_file = pid_dir / "svc.pid"
        script = proxy.generate(proxy.ProxyOptions(
            name="svc", command=("/bin/sh", "-c", f"echo {sleeper.pid} > '{pid_file}'"),
            wrap_daemon=True, pid_file=str(pid_file), user=atk.pw_name,
            pid_file_timeout=2, initialize="true"))
        proxy_path = tmp_path / "proxy"
        proxy_path.write_text(script)
        proxy_path.chmod(0o755)
        proxy = subprocess.Popen([str(proxy_path)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proxy.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            # It adopted the pid (the original behaviour): a stop is forwarded to it.
            proxy.terminate()
            out, _ = proxy.communicate(timeout=15)
        text = out.decode(errors="replace")
        assert pid_file.read_text().strip() == str(sleeper.pid), text
        assert alive(sleeper), f"the proxy signalled root's pid {sleeper.pid}:\n{text}"
        assert proxy.returncode == 1, text
        assert f"not trusting {pid_file}: pid {sleeper.pid}" in text, text
        assert "giving up" in text, text
