"""Hosts on this machine for the network tests: one sshd per loopback address.

Each :class:`FakeHost` is a distinct address in 127.0.0.0/8 (127.0.0.2,
127.0.0.3, ...) with its own Debian ``openssh-server`` (``sshd -f CONFIG``
listening only on that address, its own host key and pid file, keys only,
no PAM), its own throw-away login user (``useradd``, unlocked with
``usermod -p '*'`` so sshd accepts a key for it, deleted afterwards) and its
own procmgmt state dir. Nothing listens or connects outside the loopback range.

Where mount namespaces can be made (root with ``unshare``), each sshd runs in
a mount namespace of its own (``unshare --mount --propagation private``)
whose home directory is a tmpfs mounted there only: what a host's sessions
write (state dirs, venvs, bundles) no other host sees, nor the coordinator
(the test process), which looks at a host's files through
``/proc/<sshd pid>/root`` (:meth:`FakeHost.path`) and runs a program there
with ``nsenter`` (:meth:`FakeHost.command`). Every process a host starts is
in its namespace; the tmpfs goes when the last of them has ended.

The login key and the known_hosts file are generated per run; the accounts
are named after the test process (unique beside other pytest workers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests._lanes import require_root, require_tool, skip
from tests.e2e.util import REPO, add_own_account, kill_uid, own_account_name, worker_share

#: The sshd configuration of a test host (values filled in per host).
SSHD_CONFIG = """\
ListenAddress {address}:{port}
HostKey {host_key}
PidFile {pid_file}
AuthorizedKeysFile {keys_dir}/%u
AllowUsers {user}
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel ERROR
"""


@dataclass
class FakeHost:
    """One test host: where sshd listens, who logs in, where procmgmt keeps state."""

    name: str
    address: str
    ssh_port: int
    user: str
    uid: int
    home: Path
    sshd: subprocess.Popen[bytes] | None = None
    #: True: sshd (and all it starts) runs in a mount namespace of its own.
    namespaced: bool = False

    @property
    def state_dir(self) -> str:
        return str(self.home / "state")

    def path(self, path: str | Path) -> Path:
        """Where the test process sees ``path`` of this host (through the sshd's root
        when the host has its own mount namespace)."""
        if not self.namespaced or self.sshd is None:
            return Path(path)
        return Path(f"/proc/{self.sshd.pid}/root") / str(path).lstrip("/")

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` to run in this host's mount namespace."""
        if not self.namespaced or self.sshd is None:
            return argv
        return ["nsenter", f"--mount=/proc/{self.sshd.pid}/ns/mnt", "--", *argv]

    def free_port(self) -> int:
        """A free TCP port on this host's address (for a service of the test)."""
        return free_port(self.address)


@dataclass
class HostSet:
    """The hosts of one test module, and the coordinator's key for them."""

    base: Path
    key: Path
    known_hosts: Path
    hosts: list[FakeHost]
    venv: str


def free_port(address: str, start: int = 20000, end: int = 32700) -> int:
    """A port free on ``address`` (below the ephemeral range, see tests.e2e.util), from
    this xdist worker's share of the range: a port found free is bound only when the
    test deploys, and pre-flight refuses a port taken on any address."""
    import random

    start, end = worker_share(start, end)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(start, end)
        with socket.socket() as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port on {address}")


def _accessible(path: str) -> bool:
    """True when every directory up to ``path`` lets other users through."""
    current = Path(path)
    for part in [current, *current.parents]:
        with contextlib.suppress(OSError):
            if part.is_dir() and not os.stat(part).st_mode & 0o001:
                return False
    return True


def _mount_namespaces() -> bool:
    """True when this machine lets the tests give each sshd its own mount namespace."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           capture_output=True, check=False)
    return probe.returncode == 0


def _wait_listening(address: str, port: int, sshd: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            raise RuntimeError(f"sshd on {address}:{port} exited with {sshd.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((address, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd on {address}:{port} does not accept connections")


@contextlib.contextmanager
def host_set(count: int) -> Iterator[HostSet]:
    """``count`` hosts at 127.0.0.2 ... , each with its sshd and user; all removed after."""
    require_root("the network tests create login users and run sshd")
    require_tool("useradd")
    sshd = require_tool("sshd")
    venv = str(REPO / ".venv")
    if not _accessible(venv):
        skip(f"the test venv {venv} is not readable by other users (the target users "
             "run procmgmt from it)")
    base = Path(tempfile.mkdtemp(prefix="procmgmt-net-"))
    os.chmod(base, 0o755)
    hosts: list[FakeHost] = []
    keys_dir = base / "authorized"
    keys_dir.mkdir(mode=0o755)
    key = base / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    # Unique beside other pytest workers and leftovers of a killed run (pid reuse).
    tag = own_account_name("pmnet", os.urandom(2).hex())
    namespaced = _mount_namespaces()
    try:
        for i in range(count):
            address = f"127.0.0.{i + 2}"
            user = f"{tag}h{i}"
            home = base / f"home{i}"
            # An id of the band tests keep for themselves: a uid useradd would pick
            # (1000 and up) may be a user's in the systemd container booted beside,
            # whose processes this machine's /proc shows under that uid.
            uid = add_own_account(user, "--no-create-home", "--home-dir", str(home),
                                  "--shell", "/bin/sh")
            subprocess.run(["usermod", "-p", "*", user], check=True, capture_output=True)
            home.mkdir(mode=0o755)
            shutil.chown(home, user, user)
            host = FakeHost(f"host{i}", address, free_port(address), user, uid, home,
                            namespaced=namespaced)
            hosts.append(host)
            (keys_dir / user).write_text(key.with_suffix(".pub").read_text())
            host_key = base / f"ssh_host_{i}"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                           check=True)
            config = base / f"sshd_config_{i}"
            config.write_text(SSHD_CONFIG.format(
                address=address, port=host.ssh_port, host_key=host_key,
                pid_file=base / f"sshd_{i}.pid", keys_dir=keys_dir, user=user))
            argv = [sshd, "-D", "-e", "-f", str(config)]
            if namespaced:  # the home: a tmpfs of this host's namespace only
                gid = os.stat(home).st_gid
                argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        'mount -t tmpfs -o "mode=0755,uid=$1,gid=$2" tmpfs "$3" && '
                        'shift 3 && exec "$@"', "sh", str(uid), str(gid), str(home), *argv]
            with open(base / f"sshd_{i}.log", "wb") as log:
                host.sshd = subprocess.Popen(argv,
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True)
            _wait_listening(address, host.ssh_port, host.sshd)
        yield HostSet(base, key, base / "known_hosts", hosts, venv)
    finally:
        for host in hosts:
            if host.sshd is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(host.sshd.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    host.sshd.wait(timeout=5)
            kill_uid(host.uid)
            subprocess.run(["userdel", host.user], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
