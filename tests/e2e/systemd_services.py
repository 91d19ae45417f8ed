"""Container half of the service catalogue under real systemd (run by systemd_nspawn.py).

Imported by the ``services`` step of :func:`systemd_nspawn.scenario` inside
the container, so like that module it uses the standard library only. As
root with user changes allowed (each instance its own user: PostgreSQL
refuses root), it deploys with ``-P systemd``, one after the other:

1. ``catalogue``: ``examples/services/processes.py`` (PostgreSQL x2, Redis,
   MariaDB, nginx, Apache) plus two memcached instances;
2. ``webnginx``: ``examples/webapps-nginx/processes-advanced.py`` (six
   webapps behind two host-based nginx reverse proxies).

Each is checked with the services' real clients (psql over the unix socket,
redis-cli, the mariadb client over its socket, curl through every nginx
and Apache host, memcached's ``version``), with each unit's processes
running as the instance's user (/proc), and with its data directories owned
by that user; then undeployed: no unit active, every port closed, no
process of a service user left, the accounts procmgmt created deleted and
the data directories kept. They run one after the other because both
models have an instance called ``nginx`` (same unit name, same account).

The ``userservices`` step then deploys both again in the unprivileged
profile: ``systemctl --user`` of :data:`systemd_nspawn.TEST_USER` (its user
manager started with ``systemctl start user@UID.service``), procmgmt run by
that user (user changes are disabled automatically for a non-root
deployer), a state dir in its home and high ports. The same clients must
answer; every process of every unit's cgroup (nginx and Apache masters
included) and every data directory belong to that user; no account is
created or deleted; after the undeploy no user unit is left, every port is
closed and the user has no process left but its user manager.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

try:
    from tests.e2e import systemd_nspawn as ns
except ImportError:  # inside the container: the copy next to this file
    import systemd_nspawn as ns  # type: ignore[no-redef,import-not-found]

#: Port offsets of examples/services/processes.py, plus the two memcached instances.
CATALOGUE = {"postgresql1": 0, "postgresql2": 1, "redis": 2, "mariadb": 3, "nginx": 4,
             "apache": 5, "memcached1": 6, "memcached2": 7}
#: examples/webapps-nginx/processes-advanced.py: webappN on +N, nginx +80, nginx2 +81.
WEBNGINX = {**{f"webapp{i}": i for i in range(1, 7)}, "nginx": 80, "nginx2": 81}
#: Ports the Debian units would take if one of them ran.
DEBIAN_PORTS = (5432, 6379, 3306, 11211, 80)
#: Servers whose master runs as root and hands the work to children of the instance
#: user (nginx workers, Apache children): MainPID is root, its children are not.
ROOT_MASTER = {"nginx", "nginx2", "apache"}

#: The catalogue model: the services example unchanged, plus memcached twice.
CATALOGUE_MODEL = '''
import importlib.util
import os

from procmgmt import Instance
from procmgmt.services.memcached import memcached, memcached_metadata

_EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "examples", "services", "processes.py")
_spec = importlib.util.spec_from_file_location("pmtest_services_example", _EXAMPLE)
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)


def processes(settings):
    instances = _example.processes(settings)
    base = int(settings.extra_params["port_base"])
    make = memcached(settings)
    for n in (1, 2):
        port = base + 5 + n
        instances[f"memcached{n}"] = Instance(
            make(port=port, instance_suffix=str(n), memory_mb=16, max_connections=64),
            **memcached_metadata(settings, port=port, instance_suffix=str(n)))
    return instances
'''


def uids_running() -> dict[int, list[int]]:
    """uid -> pids of every live process (real uid)."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            uid = ns.proc_uid(int(entry))
            if uid is not None:
                out.setdefault(uid, []).append(int(entry))
    return out


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc/<pid>/task/*/children)."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def memcached_version(port: int) -> str:
    """memcached's answer to ``version`` (text protocol)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            s.sendall(b"version\r\n")
            data = b""
            while not data.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace").strip()
    except OSError as exc:
        return f"error: {exc}"


class Deployment:
    """One profile deployed with ``-P systemd`` as root: its checks."""

    def __init__(self, sc: ns.Scenario, label: str, state_dir: str, base: int,
                 offsets: dict[str, int], user_mode: ns.Mode | None = None) -> None:
        self.sc = sc
        self.label = label
        #: As root (system manager), or the unprivileged user's manager (``user_mode``).
        self.mode = (dataclasses.replace(user_mode, name=label, state_dir=state_dir)
                     if user_mode else ns.Mode(label, state_dir=state_dir))
        self.user = user_mode.user if user_mode else None
        self.base = base
        self.offsets = offsets
        self.state = Path(state_dir)
        #: name -> uid of the instance user, recorded while it exists.
        self.uids: dict[str, int] = {}
        #: Instance accounts the system had before the deployment (Debian's
        #: redis-server package creates ``redis``): used, never created or deleted.
        self.preexisting = {n for n, there in ns.accounts_present(list(offsets)).items()
                            if there}

    def check(self, name: str, ok: bool, **detail: Any) -> bool:
        """A check named ``<label>.<name>``."""
        return self.sc.check(f"{self.label}.{name}", ok, **detail)

    def port(self, name: str) -> int:
        """The instance's port."""
        return self.base + self.offsets[name]

    def client(self, name: str, argv: Sequence[str]) -> tuple[int, str]:
        """(exit status, stdout+stderr) of a client run inside the container."""
        r = ns.run(self.sc, self.mode, argv, timeout=30)
        return r.returncode, r.stdout + r.stderr

    def switch(self, *args: str) -> str:
        """``procmgmt switch -P systemd ARGS --extra-params {port_base}``; its output."""
        r = ns.procmgmt(self.sc, self.mode, "switch", "-P", "systemd", *args,
                        "--extra-params", json.dumps({"port_base": self.base}))
        step = "undeploy" if "--undeploy" in args else "switch"
        extra: dict[str, Any] = {}
        if r.returncode != 0:
            # What the managers said meanwhile (the scenario runs as root: the
            # whole journal, user managers' too), to tell why from the report.
            journal = subprocess.run(["journalctl", "--no-pager", "-n", "60"],
                                     capture_output=True, text=True, timeout=30, check=False)
            extra["journal"] = journal.stdout[-6000:]
        self.check(f"{step}.rc", r.returncode == 0, out=r.stdout, err=r.stderr, **extra)
        return r.stdout

    def owner_ids(self, name: str) -> tuple[int, int] | None:
        """(uid, gid) the instance runs as: its own account, or the deploying user."""
        if self.user:
            pw = pwd.getpwnam(self.user)
            return pw.pw_uid, pw.pw_gid
        return ns.account_ids(name)

    def systemctl(self, *args: str) -> list[str]:
        """``systemctl [--user] ARGS`` for this deployment's manager."""
        return ["systemctl", *(["--user"] if self.user else []), *args]

    def deployed(self, out: str) -> None:
        """Accounts created before the start, each unit active as its own user
        (unprivileged: no account touched, everything runs as the deploying user)."""
        if self.user:
            self.deployed_as_user(out)
            return
        for name in self.offsets:
            ids = ns.account_ids(name)
            created = out.find(f"created user {name} ")
            if name in self.preexisting:
                ok = created < 0  # left alone
            else:
                ok = 0 <= created < out.find(f"starting {name}\n")
            self.check(f"{name}.account", ids is not None and ok, ids=ids,
                       preexisting=name in self.preexisting)
            if ids is None:
                continue
            self.uids[name] = ids[0]
            unit = f"{ns.PREFIX}{name}.service"
            props = ns.show(self.sc, self.mode, unit, "ActiveState", "MainPID", "User", "Type")
            pid = int(props.get("MainPID") or 0)
            own = ([ids[0]] * 4, [ids[1]] * 4)
            if name in ROOT_MASTER:
                # The master keeps root (it may bind low ports); its children are the
                # instance user's. Apache forks its children only after the pid file.
                deadline = time.monotonic() + 5
                kids: list[int] = []
                while time.monotonic() < deadline:
                    kids = children(pid) if pid else []
                    if kids and all(ns.proc_ids(k) == own for k in kids):
                        break
                    time.sleep(0.1)
                ok = (ns.proc_ids(pid) == ([0] * 4, [0] * 4) and bool(kids)
                      and all(ns.proc_ids(k) == own for k in kids))
                detail: dict[str, Any] = {"children": {k: ns.proc_ids(k) for k in kids}}
            else:
                ok = ns.proc_ids(pid) == own
                detail = {}
            self.check(f"{name}.runs_as_own_user", props.get("ActiveState") == "active" and ok,
                       props=props, ids=ns.proc_ids(pid) if pid else None, want=own, **detail)

    def deployed_as_user(self, out: str) -> None:
        """Unprivileged: no account created, and every process in each unit's cgroup (the
        nginx and Apache masters and their children too) runs as the deploying user."""
        self.check("accounts_untouched", "created user" not in out
                   and "created group" not in out, out=out)
        for name in self.offsets:
            unit = f"{ns.PREFIX}{name}.service"
            own = self.owner_ids(name)
            want = ([own[0]] * 4, [own[1]] * 4) if own else None
            deadline = time.monotonic() + 5
            while True:  # Apache forks its children only after writing the pid file
                props = ns.show(self.sc, self.mode, unit, "ActiveState", "MainPID",
                                "ControlGroup")
                pid = int(props.get("MainPID") or 0)
                pids = cgroup_pids(props.get("ControlGroup", ""))
                ids = {p: ns.proc_ids(p) for p in pids}
                kids = children(pid) if pid else []
                ok = (props.get("ActiveState") == "active" and pid in pids
                      and all(i == want for i in ids.values() if i is not None)
                      and (bool(kids) or name not in ROOT_MASTER))
                if ok or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.check(f"{name}.runs_as_deployer", ok, props=props, ids=ids, want=want,
                       children=kids)

    def data_dir_owned(self, name: str, mode: int) -> None:
        """``<state>/db/<name>`` belongs to the instance user with ``mode``."""
        path = self.state / "db" / name
        st = path.stat() if path.is_dir() else None
        ids = self.owner_ids(name)
        self.check(f"{name}.data_dir_owned", st is not None and ids is not None
                   and (st.st_uid, st.st_gid) == ids and st.st_mode & 0o7777 == mode,
                   path=str(path), owner=st and (st.st_uid, st.st_gid), ids=ids,
                   mode=st and oct(st.st_mode & 0o7777))

    def undeployed(self, out: str, data_dirs: Sequence[str]) -> None:
        """No unit active, ports closed, no process of a service user, accounts deleted,
        data directories kept."""
        listed = ns.run(self.sc, self.mode, self.systemctl(
            "list-units", "--no-legend", "--plain", "--all", f"{ns.PREFIX}*")).stdout
        self.check("undeploy.no_unit", listed.strip() == "", listed=listed)
        open_ports = [self.port(n) for n in self.offsets if not ns.port_closed(self.port(n))]
        self.check("undeploy.ports_closed", open_ports == [], open=open_ports)
        if self.user:
            self.undeployed_as_user(out, data_dirs)
            return
        # Apache children may take a moment to exit after the stop returned.
        deadline = time.monotonic() + 5
        while True:
            running = uids_running()
            left = {n: running[u] for n, u in self.uids.items() if u in running}
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.check("undeploy.no_process", bool(self.uids) and left == {}, left=left)
        present = ns.accounts_present(list(self.offsets))
        self.check("undeploy.accounts_deleted",
                   present == {n: n in self.preexisting for n in self.offsets}
                   and all((f"deleted user {n} " in out) != (n in self.preexisting)
                           for n in self.offsets),
                   present=present, preexisting=sorted(self.preexisting), out=out)
        kept = {d: (self.state / "db" / d).is_dir() for d in data_dirs}
        self.check("undeploy.data_kept", all(kept.values()), kept=kept)

    def undeployed_as_user(self, out: str, data_dirs: Sequence[str]) -> None:
        """Unprivileged: the user has no process left but its user manager, no account
        was deleted (none created either: only pre-existing ones exist), data kept."""
        pw = pwd.getpwnam(self.user or "")
        manager = f"/user.slice/user-{pw.pw_uid}.slice/user@{pw.pw_uid}.service/init.scope"
        deadline = time.monotonic() + 5
        while True:
            left = {p: proc_cgroup(p) for p in uids_running().get(pw.pw_uid, [])}
            left = {p: cg for p, cg in left.items() if cg != manager and cg is not None}
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        managers = [p for p in uids_running().get(pw.pw_uid, []) if proc_cgroup(p) == manager]
        self.check("undeploy.only_user_manager", left == {} and bool(managers), left=left,
                   manager=managers)
        present = ns.accounts_present(list(self.offsets))
        self.check("undeploy.accounts_untouched",
                   present == {n: n in self.preexisting for n in self.offsets}
                   and "deleted user" not in out and "deleted group" not in out,
                   present=present, preexisting=sorted(self.preexisting), out=out)
        kept = {d: (self.state / "db" / d).is_dir() for d in data_dirs}
        self.check("undeploy.data_kept", all(kept.values()), kept=kept)


def cgroup_pids(group: str) -> list[int]:
    """Every live pid in the cgroup ``group`` or one of its sub-groups, read from each
    process's /proc/<pid>/cgroup (the host may mount cgroup v1 only, so the unified
    tree is not always under /sys/fs/cgroup); [] for an empty ``group``."""
    if not group:
        return []
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            cg = proc_cgroup(int(entry))
            if cg is not None and (cg == group or cg.startswith(group + "/")):
                pids.append(int(entry))
    return pids


def proc_cgroup(pid: int) -> str | None:
    """The cgroup (v2) path of a live process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def debian_units_masked(sc: ns.Scenario) -> None:
    """Debian's own units of these services are masked and not running."""
    mode = ns.Mode("debian")
    for unit in ns.DEBIAN_UNITS:
        props = ns.show(sc, mode, unit, "LoadState", "ActiveState")
        sc.check(f"debian.{unit}.masked", props.get("LoadState") == "masked"
                 and props.get("ActiveState") == "inactive", props=props)


def debian_ports_closed(sc: ns.Scenario, step: str) -> None:
    """None of the Debian default ports is open (no Debian instance started)."""
    opened = [p for p in DEBIAN_PORTS if not ns.port_closed(p)]
    sc.check(f"debian.{step}.ports_closed", opened == [], open=opened)


def catalogue(sc: ns.Scenario, base: int, label: str = "catalogue",
              state_dir: str = "/srv/pmtest-services", user_mode: ns.Mode | None = None) -> None:
    """The services example plus two memcached, each service checked with its client."""
    d = Deployment(sc, label, state_dir, base, CATALOGUE, user_mode)
    model = Path(ns.MOUNT) / "catalogue.py"
    if not model.exists():  # written once, as root (the user cannot write the mount)
        model.write_text(CATALOGUE_MODEL, encoding="utf-8")
    out = d.switch(str(model))
    d.deployed(out)
    run_dir = d.state / "run"
    for name in ("postgresql1", "postgresql2"):
        rc, text = d.client(name, ["psql", "-X", "-h", str(run_dir / name),
                                   "-p", str(d.port(name)), "-U", "postgres", "-l"])
        d.check(f"{name}.psql", rc == 0 and "template1" in text, out=text)
        rc, text = d.client(name, ["psql", "-X", "-h", str(run_dir / name),
                                   "-p", str(d.port(name)), "-U", "postgres", "-Atc",
                                   "select current_setting('port') || ' ' || "
                                   "current_setting('data_directory')"])
        d.check(f"{name}.own_server", rc == 0 and text.split() ==
                [str(d.port(name)), str(d.state / "db" / name)], out=text)
        d.data_dir_owned(name, 0o700)
    rc, text = d.client("redis", ["redis-cli", "-h", "127.0.0.1", "-p", str(d.port("redis")),
                                  "ping"])
    d.check("redis.ping", rc == 0 and text.strip() == "PONG", out=text)
    d.data_dir_owned("redis", 0o750)
    rc, text = d.client("mariadb", ["mariadb", "--no-defaults", "-S",
                                    str(run_dir / "mariadb" / "mysqld.sock"), "-u", "root",
                                    "-N", "-e", "show databases"])
    d.check("mariadb.show_databases", rc == 0 and "mysql" in text.split(), out=text)
    d.data_dir_owned("mariadb", 0o750)
    for name, text_wanted in (("nginx", "nginx instance nginx"), ("apache", "Apache instance")):
        rc, text = d.client(name, ["curl", "-sS", "--max-time", "5",
                                   f"http://127.0.0.1:{d.port(name)}/"])
        d.check(f"{name}.curl", rc == 0 and text_wanted in text, out=text)
    for name in ("memcached1", "memcached2"):
        answer = memcached_version(d.port(name))
        d.check(f"{name}.version", answer.startswith("VERSION "), answer=answer)
    pids = {n: ns.show(sc, d.mode, f"{ns.PREFIX}{n}.service", "MainPID").get("MainPID")
            for n in ("postgresql1", "postgresql2", "memcached1", "memcached2")}
    d.check("side_by_side", len(set(pids.values())) == 4 and "0" not in pids.values(),
            pids=pids)
    debian_ports_closed(sc, label)
    out = d.switch("--undeploy")
    d.undeployed(out, ("postgresql1", "postgresql2", "redis", "mariadb"))


def webnginx(sc: ns.Scenario, base: int, label: str = "webnginx",
             state_dir: str = "/srv/pmtest-webnginx", user_mode: ns.Mode | None = None) -> None:
    """webapps-nginx (advanced): every host name through the nginx that proxies it."""
    d = Deployment(sc, label, state_dir, base, WEBNGINX, user_mode)
    out = d.switch(f"{ns.MOUNT}/examples/webapps-nginx/processes-advanced.py")
    d.deployed(out)
    for i in range(1, 7):
        right, wrong = ("nginx", "nginx2") if i <= 4 else ("nginx2", "nginx")
        host = f"webapp{i}.local"
        rc, text = d.client(right, ["curl", "-sS", "--max-time", "5", "-H", f"Host: {host}",
                                    f"http://127.0.0.1:{d.port(right)}/"])
        d.check(f"webapp{i}.via_{right}", rc == 0 and
                f"listening on port: {d.port(f'webapp{i}')}" in text
                and f"instance: webapp{i}<" in text, out=text)
        rc, text = d.client(wrong, ["curl", "-sS", "--max-time", "5", "-o", "/dev/null",
                                    "-w", "%{http_code}", "-H", f"Host: {host}",
                                    f"http://127.0.0.1:{d.port(wrong)}/"])
        d.check(f"webapp{i}.not_via_{wrong}", rc == 0 and text.strip() == "404", out=text)
    debian_ports_closed(sc, label)
    out = d.switch("--undeploy")
    d.undeployed(out, ())


def scenario(sc: ns.Scenario, config: dict[str, Any]) -> None:
    """Both deployments, one after the other (they share the name ``nginx``)."""
    debian_units_masked(sc)
    debian_ports_closed(sc, "boot")
    catalogue(sc, int(config["services_port_base"]))
    webnginx(sc, int(config["webnginx_port_base"]))


def user_scenario(sc: ns.Scenario, config: dict[str, Any], uid: int) -> None:
    """Both deployments again in ``systemctl --user`` of the unprivileged test user,
    state under its home, one after the other (the unit name ``nginx`` again)."""
    mode = ns.user_manager(sc, uid)
    home = pwd.getpwuid(uid).pw_dir
    catalogue(sc, int(config["user_services_port_base"]), "usercatalogue",
              f"{home}/pmtest-services", mode)
    webnginx(sc, int(config["user_webnginx_port_base"]), "userwebnginx",
             f"{home}/pmtest-webnginx", mode)
