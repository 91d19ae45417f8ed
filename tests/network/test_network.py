"""``procmgmt network`` for real: three sshd hosts on loopback addresses of this machine.

The hosts (:mod:`tests.network.hosts`) are shared by the tests of this module;
each test deploys into state dirs of its own on every host and leaves nothing
running. Services bind the address of their host (127.0.0.2 ...), so a
webapp on one host answers only there and nginx on another reaches it by
that address.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from procmgmt.cli.main import main
from procmgmt.errors import DeployError
from procmgmt.network.transition import Network
from procmgmt.settings import Settings, resolve
from tests.e2e.util import REPO, uid_pids
from tests.network.hosts import FakeHost, HostSet, free_port, host_set

pytestmark = [pytest.mark.e2e, pytest.mark.root("creates login users and runs sshd"),
              pytest.mark.own_accounts,
              pytest.mark.requires_tool("sshd", "nginx")]

EXAMPLE = REPO / "examples" / "network"
_TESTS = itertools.count()


@pytest.fixture(scope="module")
def hostset() -> Iterator[HostSet]:
    with host_set(3) as hs:
        yield hs


@dataclass
class Deployment:
    """One test's view: its files, its coordinator and the port base of its services."""

    hs: HostSet
    dir: Path
    base: int
    settings: Settings

    @property
    def hosts(self) -> list[FakeHost]:
        return self.hs.hosts

    def infra(self, managers: tuple[str, ...] = ("sysvinit",) * 3,
              broken_port: int | None = None, first_venv: str | None = None,
              install_from: str | None = None) -> str:
        """An infrastructure file for the hosts; ``broken_port``: the last host's sshd
        port replaced by one nothing listens on; ``first_venv``/``install_from``: the
        first host's venv (without procmgmt) and what to install there."""
        lines = ["from procmgmt.network import SSH, Target", "",
                 "def infrastructure():", "    return ["]
        for i, (h, manager) in enumerate(zip(self.hosts, managers, strict=True)):
            port = broken_port if broken_port and i == len(self.hosts) - 1 else h.ssh_port
            ssh = (f"SSH({h.address!r}, {port}, {h.user!r}, {str(self.hs.key)!r}, "
                   f"{str(self.hs.known_hosts)!r})")
            venv = first_venv if first_venv and i == 0 else self.hs.venv
            source = install_from if i == 0 else None
            lines.append(f"        Target({h.name!r}, {ssh}, {manager!r}, "
                         f"{self.state_dir(h)!r}, venv={venv!r}, install_from={source!r}, "
                         f"properties={{'address': {h.address!r}}}),")
        lines.append("    ]")
        path = self.dir / f"infra-{'-'.join(managers)}-{broken_port}-{first_venv is None}.py"
        path.write_text("\n".join(lines) + "\n")
        return str(path)

    def distribution(self, placed: dict[str, str]) -> str:
        """A distribution file placing instances on hosts by name."""
        path = self.dir / f"dist-{len(list(self.dir.iterdir()))}.py"
        path.write_text(f"def distribution(infrastructure, processes):\n"
                        f"    return {placed!r}\n")
        return str(path)

    def state_dir(self, host: FakeHost) -> str:
        return str(host.home / self.dir.name)

    def network(self, **params: object) -> Network:
        settings = resolve({"state_dir": self.settings.state_dir,
                            "extra_params": json.dumps({"port_base": self.base, **params})})
        return Network(settings, io.StringIO())

    def cli(self, *args: str, **params: object) -> int:
        return main(["network", *args, "--state-dir", self.settings.state_dir,
                     "--extra-params", json.dumps({"port_base": self.base, **params})])

    def current(self, host: FakeHost) -> str | None:
        """The current generation's store path on ``host`` (None: none)."""
        profiles = host.path(self.state_dir(host)) / "lib" / "procmgmt" / "profiles"
        pointer = profiles / "default"
        if not pointer.is_symlink():
            return None
        return os.readlink(profiles / os.readlink(pointer))

    def get(self, host: FakeHost, port: int, name: str | None = None) -> str | None:
        req = urllib.request.Request(f"http://{host.address}:{port}/")
        if name:
            req.add_header("Host", name)
        try:
            with urllib.request.urlopen(req, timeout=3) as resp:
                return str(resp.read().decode())
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError):
            return None


def listening(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((address, port)) == 0


def wait_only_sessions(uid: int, timeout: float = 10.0) -> list[str]:
    """Wait until ``uid`` runs nothing but sshd sessions; the command lines left."""
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for pid in uid_pids(uid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if not cmdline.startswith(b"sshd"):
                left.append(cmdline.decode(errors="replace"))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def port_base(hosts: list[FakeHost]) -> int:
    """A base port with base+1 .. base+3 and base+80 free on every host's address."""
    for _ in range(100):
        base = free_port(hosts[0].address, 20000, 32000)
        ports = [base + i for i in (1, 2, 3, 80)]
        if all(_free(h.address, p) for h in hosts for p in ports):
            return base
    raise RuntimeError("no free port block on the test addresses")


def _free(address: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
        return True


@pytest.fixture
def dep(hostset: HostSet, tmp_path: Path) -> Iterator[Deployment]:
    """A test's deployment; undeployed (and checked empty) afterwards."""
    # Short (unix socket paths under it) and unique per test: state dirs on the hosts.
    d = tmp_path / f"t{os.getpid()}x{next(_TESTS)}"
    d.mkdir()
    settings = resolve({"state_dir": str(tmp_path / "coordinator")})
    deployment = Deployment(hostset, d, port_base(hostset.hosts), settings)
    yield deployment
    net = deployment.network()
    if net.profile.current() is not None:
        net.undeploy()
    for h in hostset.hosts:
        assert not any(listening(h.address, deployment.base + i) for i in (1, 2, 3, 80))
        # No network lock and no bundle left behind, whatever the test did.
        assert not list(h.path(deployment.state_dir(h)).glob(
            "lib/procmgmt/profiles/*.network-lock"))
        assert not list(h.path(h.home).glob(".procmgmt-bundle-*"))


def example_infra_dist(dep: Deployment) -> tuple[str, str]:
    return dep.infra(), str(EXAMPLE / "distribution.py")


def test_split_across_hosts_deploy_status_logs_undeploy(
        dep: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    infra, dist = example_infra_dist(dep)
    front, one, two = dep.hosts
    assert dep.cli("switch", infra, dist, str(EXAMPLE / "processes.py")) == 0
    out = capsys.readouterr().out
    assert "host1:\n  start    webapp1" in out and "network generation 1 is current" in out
    # nginx on host0 proxies to the webapps on host1 and host2 by their addresses.
    assert "instance: webapp1" in (dep.get(front, dep.base + 80, "webapp1.local") or "")
    assert "instance: webapp2" in (dep.get(front, dep.base + 80, "webapp2.local") or "")
    assert dep.get(front, dep.base + 80, "other.local") == "HTTP 404"
    if front.namespaced:  # each host sees its own home only, the coordinator none
        def sees(host: FakeHost, path: str) -> bool:
            return subprocess.run(host.command(["test", "-e", path]),
                                  check=False).returncode == 0
        assert sees(one, dep.state_dir(one)) and not sees(one, dep.state_dir(front))
        assert sees(front, dep.state_dir(front)) and not sees(front, dep.state_dir(two))
        assert not os.path.exists(dep.state_dir(two))
    # Each webapp binds its own host's address only.
    assert listening(one.address, dep.base + 1) and not listening(two.address, dep.base + 1)
    assert listening(two.address, dep.base + 2) and not listening(one.address, dep.base + 2)

    assert dep.cli("status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert {h: [p["name"] for p in status[h]["processes"]] for h in status} == {
        "host0": ["nginx"], "host1": ["webapp1"], "host2": ["webapp2"]}
    assert dep.cli("logs", "-n", "5") == 0
    capsys.readouterr()
    assert dep.cli("switch", "--list-generations") == 0
    assert "(current)" in capsys.readouterr().out

    # The same switch again changes nothing anywhere.
    before = [dep.current(h) for h in dep.hosts]
    assert dep.cli("switch", infra, dist, str(EXAMPLE / "processes.py")) == 0
    out = capsys.readouterr().out
    assert "host1:\n  keep     webapp1" in out and "network generation 1 is current" in out
    assert [dep.current(h) for h in dep.hosts] == before

    assert dep.cli("switch", "--undeploy") == 0
    for h in dep.hosts:  # nothing of the host's user runs but its closing ssh sessions
        assert wait_only_sessions(h.uid) == []
    assert not listening(front.address, dep.base + 80)


def test_failure_on_the_last_host_rolls_every_host_back(dep: Deployment) -> None:
    infra, dist = example_infra_dist(dep)
    model = str(EXAMPLE / "processes.py")
    dep.network().switch(infra, dist, model)
    before = [dep.current(h) for h in dep.hosts]
    front, one, _ = dep.hosts
    # Three webapps: webapp3 joins host1, nginx changes on host0, and webapp2 on the
    # last host, host2, fails to start.
    with pytest.raises(DeployError, match=r"(?s)start failed on host2.*every host is back"):
        dep.network(webapps=3, broken="webapp2").switch(infra, dist, model)
    assert [dep.current(h) for h in dep.hosts] == before
    assert not listening(one.address, dep.base + 3)
    assert "instance: webapp2" in (dep.get(front, dep.base + 80, "webapp2.local") or "")
    assert dep.get(front, dep.base + 80, "webapp3.local") == "HTTP 404"
    assert dep.network().profile.numbers() == [1]


def test_unreachable_host_changes_nothing(dep: Deployment) -> None:
    infra, dist = example_infra_dist(dep)
    model = str(EXAMPLE / "processes.py")
    dep.network().switch(infra, dist, model)
    before = [dep.current(h) for h in dep.hosts]
    closed = free_port(dep.hosts[-1].address)
    with pytest.raises(DeployError, match=r"unreachable: host2.*nothing was changed"):
        dep.network(webapps=3).switch(dep.infra(broken_port=closed), dist, model)
    assert [dep.current(h) for h in dep.hosts] == before
    assert not listening(dep.hosts[1].address, dep.base + 3)


def test_dry_run_and_a_host_without_procmgmt_change_nothing(dep: Deployment) -> None:
    infra, dist = example_infra_dist(dep)
    model = str(EXAMPLE / "processes.py")
    dep.network().switch(infra, dist, model)
    before = [dep.current(h) for h in dep.hosts]
    outcome = dep.network(webapps=3).switch(infra, dist, model, dry_run=True)
    assert outcome.plan["host1"] == ["start    webapp3", "keep     webapp1"]
    assert outcome.plan["host0"] == ["restart  nginx"] and outcome.number is None
    assert [dep.current(h) for h in dep.hosts] == before
    # procmgmt missing on host0: a venv is made there and the install attempted; a
    # package that does not install stops the switch before anything changed.
    bogus = dep.dir / "procmgmt-0-py3-none-any.whl"
    bogus.write_text("not a wheel")
    venv = str(dep.hosts[0].home / f"{dep.dir.name}-venv")
    with pytest.raises(DeployError, match=r"(?s)could not install procmgmt on host0.*"
                                          "nothing was changed"):
        dep.network(webapps=3).switch(dep.infra(first_venv=venv, install_from=str(bogus)),
                                      dist, model)
    assert dep.hosts[0].path(os.path.join(venv, "bin", "python")).is_file()
    assert [dep.current(h) for h in dep.hosts] == before
    assert not listening(dep.hosts[1].address, dep.base + 3)


def test_rollback_and_switch_generation(dep: Deployment) -> None:
    infra, dist = example_infra_dist(dep)
    model = str(EXAMPLE / "processes.py")
    front = dep.hosts[0]
    assert dep.network().switch(infra, dist, model).number == 1
    assert dep.network(webapps=3).switch(infra, dist, model).number == 2
    assert "instance: webapp3" in (dep.get(front, dep.base + 80, "webapp3.local") or "")
    assert dep.network().rollback().number == 1
    assert dep.get(front, dep.base + 80, "webapp3.local") == "HTTP 404"
    assert not listening(dep.hosts[1].address, dep.base + 3)
    assert dep.network().profile.current_number() == 1
    assert dep.network().switch_generation(2).number == 2
    assert "instance: webapp3" in (dep.get(front, dep.base + 80, "webapp3.local") or "")


def test_instance_moves_to_another_host(dep: Deployment) -> None:
    infra = dep.infra()
    model = str(EXAMPLE / "processes.py")
    front, one, two = dep.hosts
    dep.network().switch(infra, dep.distribution(
        {"nginx": "host0", "webapp1": "host1", "webapp2": "host2"}), model)
    assert listening(two.address, dep.base + 2)
    dep.network().switch(infra, dep.distribution(
        {"nginx": "host0", "webapp1": "host1", "webapp2": "host1"}), model)
    # Stopped there, started here, and the proxy follows it.
    assert not listening(two.address, dep.base + 2)
    assert listening(one.address, dep.base + 2)
    assert "instance: webapp2" in (dep.get(front, dep.base + 80, "webapp2.local") or "")


def test_sysvinit_on_one_host_supervisord_on_another(dep: Deployment) -> None:
    infra = dep.infra(("sysvinit", "supervisord", "sysvinit"))
    dist = str(EXAMPLE / "distribution.py")
    front = dep.hosts[0]
    dep.network().switch(infra, dist, str(EXAMPLE / "processes.py"))
    assert "instance: webapp1" in (dep.get(front, dep.base + 80, "webapp1.local") or "")
    assert "instance: webapp2" in (dep.get(front, dep.base + 80, "webapp2.local") or "")
    dep.network().undeploy()
    assert not listening(dep.hosts[1].address, dep.base + 1)


def _plant_lock(dep: Deployment, host: FakeHost, token: str) -> Path:
    """A network lock on ``host`` as a coordinator run that never released it leaves it."""
    lock = host.path(dep.state_dir(host)) / "lib" / "procmgmt" / "profiles" / "default.network-lock"
    lock.write_text(token + "\n")
    os.chown(lock, host.uid, -1)
    return lock


def test_a_gone_coordinators_lock_is_taken_over_another_needs_break_lock(
        dep: Deployment) -> None:
    """A coordinator killed outright leaves its network locks: the next run of the same
    machine and profile takes them over by itself (it holds the profile's lock, and
    the holder's pid is dead); a lock of another machine is refused, naming
    --break-lock, and nothing changes until the user passes it."""
    infra, dist = example_infra_dist(dep)
    model = str(EXAMPLE / "processes.py")
    dep.network().switch(infra, dist, model)
    before = [dep.current(h) for h in dep.hosts]
    gone = subprocess.Popen(["true"])
    gone.wait()
    net = dep.network(webapps=3)
    _plant_lock(dep, dep.hosts[1],
                f"{socket.gethostname()}:{gone.pid}:0123abcd:{net.profile.dir}")
    net.switch(infra, dist, model)
    assert "host1: taking over the network lock of" in net.out.getvalue()  # type: ignore[attr-defined]
    assert listening(dep.hosts[1].address, dep.base + 3)
    _plant_lock(dep, dep.hosts[2], "elsewhere:4242:0123abcd:/var/lib/procmgmt/network")
    after = [dep.current(h) for h in dep.hosts]
    assert after != before
    with pytest.raises(DeployError, match=r"locked by another network deployment "
                                          r"\(elsewhere:4242.*--break-lock"):
        dep.network().switch(infra, dist, model)
    assert [dep.current(h) for h in dep.hosts] == after
    net = dep.network()
    net.break_lock = True
    net.switch(infra, dist, model)
    assert not listening(dep.hosts[1].address, dep.base + 3)


def test_procmgmt_is_installed_where_missing_from_the_coordinators_own_wheels(
        dep: Deployment) -> None:
    """host0's login user has no procmgmt (its venv does not exist): the switch makes the
    venv with the host's python3 and installs the coordinator's own procmgmt and
    supervisor from wheels it packs and copies over (pip with no index: no traffic
    beyond the loopback SSH connection), then deploys there as everywhere else."""
    front = dep.hosts[0]
    venv = front.home / f"{dep.dir.name}-venv"
    infra = dep.infra(first_venv=str(venv))
    net = dep.network()
    net.switch(infra, str(EXAMPLE / "distribution.py"), str(EXAMPLE / "processes.py"))
    assert "installing procmgmt on host0" in net.out.getvalue()  # type: ignore[attr-defined]
    where = subprocess.run(front.command([str(venv / "bin" / "python"), "-c",
                                          "import procmgmt, supervisor; "
                                          "print(procmgmt.__file__)"]),
                           capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where
    assert front.path(venv / "bin" / "procmgmt").exists()
    assert "instance: webapp1" in (dep.get(front, dep.base + 80, "webapp1.local") or "")
    assert not list(front.path(front.home).glob(".procmgmt-wheels-*"))  # copies removed
    # The next run finds it there: nothing is installed again.
    net = dep.network()
    net.switch(infra, str(EXAMPLE / "distribution.py"), str(EXAMPLE / "processes.py"))
    assert "installing" not in net.out.getvalue()  # type: ignore[attr-defined]
