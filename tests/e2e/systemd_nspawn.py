"""Boot this machine's own OS under systemd-nspawn and run a scenario inside it.

The host has no systemd PID 1, so the systemd backend is tested against a
real systemd in a throw-away container: the root file system is bind
mounted (non-recursively, in a private mount namespace, since nspawn
refuses ``-D /``) and booted with ``--volatile=overlay`` (writes vanish)
and ``--private-network`` (only a loopback: nothing listens on the host).
A ``Type=oneshot`` check unit runs ``python3 <this file> scenario`` inside,
prints ``PMRESULT <json>`` lines on the console (nspawn's stdout) and
powers the container off.

This module has two halves and imports only the standard library, because
the container half runs under Debian's ``/usr/bin/python3``:

- host side: :func:`unavailable`, :func:`prepare_work_dir`, :func:`boot`;
- container side: :func:`scenario` (``python3 systemd_nspawn.py scenario``).

The work dir is bound at :data:`MOUNT` (outside /tmp, which is a fresh
tmpfs inside). It holds a world-readable copy of procmgmt's ``src``, of
the ``supervisor`` package and of ``examples/``: the repository's venv
lives under /root (mode 0700), which an unprivileged user cannot execute,
so everything inside runs with ``/usr/bin/python3`` and ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where the work dir appears inside the container.
MOUNT = "/opt/pmtest"
CHECK_UNIT = "pmtest-check.service"
RESULT_MARK = "PMRESULT "
SYSTEM_PYTHON = "/usr/bin/python3"
#: Seconds the whole boot may take before ``timeout`` kills nspawn: far above a
#: normal run (15-30 s here), so that on a loaded machine a slow run still
#: reports its checks instead of none.
BOOT_TIMEOUT = 150
#: The unprivileged user of the user-mode scenario (created inside only).
TEST_USER = "pmuser"
#: Its uid: above the range useradd picks from (UID_MAX 60000) and below the band
#: tests keep for accounts of their own (61000-63999): the host's /proc shows the
#: container's processes under this uid, which no account of a test beside may have.
TEST_UID = 60999
PREFIX = "procmgmt-"
SYSTEM_PORT_BASE = 38000
USER_PORT_BASE = 38100
EXTRA_PORT_BASE = 38200
NOCHANGE_PORT_BASE = 38300
#: The day-two operations scenario's server (system manager; the user manager's is +1).
OPS_PORT = 38400
FIRST_NAMES = ("webapp", "webapp1")
ADVANCED_NAMES = tuple(f"webapp{i}" for i in range(1, 7))
#: Every account the webapps scenarios may create (``webapp``, ``webapp1``..6).
WEBAPP_ACCOUNTS = ("webapp", *ADVANCED_NAMES)
#: Debian's own units of the services installed on the host. The container boots the
#: host's tree, where they are enabled: they are masked on the container's command
#: line (``systemd.mask=``), so none of them can start and take a port or a data dir.
DEBIAN_UNITS = ("postgresql.service", "postgresql@15-main.service", "redis-server.service",
                "mariadb.service", "memcached.service", "nginx.service", "apache2.service",
                "apache-htcacheclean.service", "supervisor.service")


# --- host side -------------------------------------------------------------------

def unavailable() -> str | None:
    """Why the container test cannot run here (None: it can), in the words of the
    lane rule (tests/_lanes.py): what is missing and the command that provides it.
    ``python3 tasks.py test`` as root installs systemd-container. (Imported here: this
    file also runs alone inside the container.)"""
    from tests import _lanes

    if not sys.platform.startswith("linux"):
        return "systemd-nspawn needs Linux"
    for reason in (_lanes.root_reason("systemd-nspawn"), _lanes.missing_reason("systemd-nspawn"),
                   _lanes.missing_reason("unshare")):
        if reason:
            return reason
    if not os.path.exists("/lib/systemd/systemd"):
        return f"needs /lib/systemd/systemd: apt-get install systemd, or {_lanes.SETUP}"
    return None


def _copytree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                            "*.egg-info"))


def prepare_work_dir(work: Path, repo: Path, config: dict[str, Any]) -> None:
    """Copy procmgmt, supervisor, the examples and this file into ``work`` (a+rX)."""
    _copytree(repo / "src" / "procmgmt", work / "py" / "procmgmt")
    import importlib.util

    sup = importlib.util.find_spec("supervisor")
    if sup is not None and sup.submodule_search_locations:
        _copytree(Path(next(iter(sup.submodule_search_locations))), work / "py" / "supervisor")
    _copytree(repo / "examples", work / "examples")
    shutil.copy(__file__, work / "systemd_nspawn.py")
    # The catalogue scenario (its own module, imported by the "services" step).
    shutil.copy(Path(__file__).with_name("systemd_services.py"), work / "systemd_services.py")
    (work / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (work / "results").mkdir()
    os.chmod(work / "results", 0o777)  # the test user writes its log there too
    for dirpath, dirnames, filenames in os.walk(work):
        os.chmod(dirpath, 0o777 if dirpath.endswith("results") else 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            os.chmod(p, os.stat(p).st_mode | 0o444)
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)


def check_unit_text() -> str:
    """The unit that runs the scenario at boot and powers the container off."""
    return (
        "[Unit]\n"
        "Description=procmgmt systemd backend scenario\n"
        "Wants=dbus.service\n"
        "After=dbus.service multi-user.target\n"
        "\n[Service]\n"
        "Type=oneshot\n"
        "TimeoutStartSec=infinity\n"
        "StandardOutput=journal+console\n"
        "StandardError=journal+console\n"
        f"ExecStart={SYSTEM_PYTHON} {MOUNT}/systemd_nspawn.py scenario\n"
        # ExecStopPost runs even when the scenario fails: never leave nspawn waiting.
        "ExecStopPost=/bin/systemctl --no-block poweroff\n"
    )


@dataclass
class BootResult:
    """What came back from one container run."""

    returncode: int
    console: str
    seconds: float
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    done: bool = False

    def describe(self, name: str) -> str:
        """A check's detail, for assertion messages."""
        r = self.results.get(name)
        return json.dumps(r, indent=1) if r else f"check {name!r} never reported"


def parse_results(console: str) -> tuple[dict[str, dict[str, Any]], bool]:
    """``PMRESULT`` lines of the console: checks by name, and whether the scenario ended."""
    results: dict[str, dict[str, Any]] = {}
    done = False
    for line in console.splitlines():
        at = line.find(RESULT_MARK)
        if at < 0:
            continue
        try:
            data = json.loads(line[at + len(RESULT_MARK):])
        except json.JSONDecodeError:
            continue
        if data.get("done"):
            done = True
        elif "check" in data:
            results[data["check"]] = data
    return results, done


def boot(work: Path, scratch: Path, timeout: int = BOOT_TIMEOUT) -> BootResult:
    """Boot the host's OS tree with ``work`` bound at :data:`MOUNT`; run the check unit."""
    rootbind = scratch / "rootbind"
    rootbind.mkdir()
    unit = scratch / CHECK_UNIT
    unit.write_text(check_unit_text(), encoding="utf-8")
    nspawn = ["systemd-nspawn", "-q", "-D", str(rootbind), "--volatile=overlay",
              "--private-network", "--register=no", "--keep-unit", "--link-journal=no",
              f"--bind-ro={unit}:/etc/systemd/system/{CHECK_UNIT}",
              f"--bind={work}:{MOUNT}", "-b", f"systemd.unit={CHECK_UNIT}",
              *(f"systemd.mask={u}" for u in DEBIAN_UNITS)]
    # The private mount namespace keeps the bind mount of / away from the host.
    cmd = ["timeout", "-k", "5", str(timeout), "unshare", "-m", "--propagation", "private",
           "sh", "-c", 'mount --bind / "$1" && shift && exec "$@"', "sh", str(rootbind),
           *nspawn]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout + 30,
                          check=False)
    console = (proc.stdout + proc.stderr).decode(errors="replace")
    results, done = parse_results(console)
    return BootResult(proc.returncode, console, time.monotonic() - t0, results, done)


# --- container side --------------------------------------------------------------

class Scenario:
    """Collects named checks and prints each as a ``PMRESULT`` line."""

    def __init__(self, log: Path) -> None:
        self.log = log.open("a", encoding="utf-8")
        self.lock = threading.Lock()  # scenarios run in parallel threads

    def note(self, text: str) -> None:
        """Free text for the debugging log (not on the console)."""
        with self.lock:
            self.log.write(text.rstrip("\n") + "\n")
            self.log.flush()

    def check(self, name: str, ok: bool, **detail: Any) -> bool:
        """Report one check."""
        line = RESULT_MARK + json.dumps({"check": name, "ok": bool(ok), **detail},
                                        sort_keys=True, default=str)
        with self.lock:
            print(line, flush=True)
        self.note(line)
        return ok


@dataclass
class Mode:
    """System manager as root, or a user manager as :data:`TEST_USER`."""

    name: str
    user: str | None = None
    uid: int | None = None
    port_base: int = SYSTEM_PORT_BASE
    state_dir: str | None = None
    target_dir: str = "/etc/systemd/system"
    #: Root deploying with ``--force-disable-user-change``: everything runs as root.
    no_user_change: bool = False

    @property
    def manages_accounts(self) -> bool:
        """procmgmt creates and deletes the webapp accounts (root, user changes allowed)."""
        return self.user is None and not self.no_user_change

    def env(self) -> dict[str, str]:
        """Environment of procmgmt and systemctl in this mode."""
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "PYTHONPATH": f"{MOUNT}/py", "PYTHONDONTWRITEBYTECODE": "1",
               "PROCMGMT_SYSTEMD_USER": "1" if self.user else "0"}
        if self.user:
            env["XDG_RUNTIME_DIR"] = f"/run/user/{self.uid}"
            env["HOME"] = f"/home/{self.user}"
        else:
            env["HOME"] = "/root"
        return env

    def wrap(self, cmd: Sequence[str]) -> list[str]:
        """Run ``cmd`` as the mode's user."""
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else list(cmd)


def run(sc: Scenario, mode: Mode, cmd: Sequence[str],
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command in ``mode``; its output goes to the debugging log."""
    full = mode.wrap(cmd)
    result = subprocess.run(full, env=mode.env(), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=timeout, check=False)
    sc.note(f"$ {' '.join(full)}\n[rc={result.returncode}]\n{result.stdout}{result.stderr}")
    return result


def procmgmt(sc: Scenario, mode: Mode, *args: str) -> subprocess.CompletedProcess[str]:
    """procmgmt's own CLI, from the copied sources."""
    state = ["--state-dir", mode.state_dir] if mode.state_dir else []
    flags = ["--force-disable-user-change"] if mode.no_user_change else []
    return run(sc, mode, [SYSTEM_PYTHON, "-m", "procmgmt", *args, *state, *flags])


def show(sc: Scenario, mode: Mode, unit: str, *props: str) -> dict[str, str]:
    """``systemctl [--user] show -p ...`` as a dict."""
    cmd = ["systemctl", *(["--user"] if mode.user else []), "show",
           *(f"--property={p}" for p in props), unit]
    out = run(sc, mode, cmd).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def http_get(port: int) -> str | None:
    """The page served on 127.0.0.1:port, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def port_closed(port: int) -> bool:
    """Nothing accepts connections on 127.0.0.1:port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def proc_ids(pid: int) -> tuple[list[int], list[int]] | None:
    """(Uid, Gid) fields of /proc/<pid>/status (real, effective, saved, fs), or None."""
    fields: dict[str, list[int]] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid"):
                fields[key] = [int(v) for v in value.split()]
    except OSError:
        return None
    return (fields["Uid"], fields["Gid"]) if len(fields) == 2 else None


def proc_uid(pid: int) -> int | None:
    """Real uid of a live process."""
    ids = proc_ids(pid)
    return ids[0][0] if ids else None


def account_ids(name: str) -> tuple[int, int] | None:
    """(uid of user ``name``, gid of group ``name``), or None when either is missing."""
    try:
        return pwd.getpwnam(name).pw_uid, grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def accounts_present(names: Sequence[str]) -> dict[str, bool]:
    """name -> whether the user or the group ``name`` exists (NSS, re-read every call)."""
    users = {p.pw_name for p in pwd.getpwall()}
    groups = {g.gr_name for g in grp.getgrall()}
    return {n: n in users or n in groups for n in names}


def account_lines(names: Sequence[str]) -> list[str]:
    """The /etc/passwd, /etc/shadow, /etc/group and /etc/gshadow lines of ``names``."""
    out = []
    for f in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"):
        with contextlib.suppress(OSError):
            out += [f"{f}:{line}" for line in Path(f).read_text().splitlines()
                    if line.split(":", 1)[0] in names]
    return sorted(out)


def ports_of(names: Sequence[str], base: int) -> dict[str, int]:
    """Ports the webapps examples give each instance."""
    return {n: base + (0 if n == "webapp" else int(n.removeprefix("webapp"))) for n in names}


def status_rows(sc: Scenario, mode: Mode,
                *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """Exit status and name -> row of ``procmgmt status --json`` (``extra``: more
    options, e.g. a profile)."""
    st = procmgmt(sc, mode, "status", "--json", *extra)
    try:
        rows = {r["name"]: r for r in json.loads(st.stdout)["processes"]}
    except (ValueError, KeyError, TypeError):
        rows = {}
    return st.returncode, rows


def day_two(sc: Scenario, mode: Mode, first: dict[str, int]) -> None:
    """restart, stop, start of one process (``webapp``; ``webapp1`` keeps its PID) and
    its journal through ``procmgmt logs``. Leaves both running as before."""
    m = mode.name
    r = procmgmt(sc, mode, "restart", "webapp")
    _, rows = status_rows(sc, mode)
    pid = rows.get("webapp", {}).get("pid")
    sc.check(f"{m}.day2.restart", r.returncode == 0 and pid not in (None, first["webapp"])
             and rows.get("webapp1", {}).get("pid") == first["webapp1"],
             out=r.stdout, err=r.stderr, rows=rows)
    r = procmgmt(sc, mode, "stop", "webapp")
    code, rows = status_rows(sc, mode)
    sc.check(f"{m}.day2.stopped_by_hand", r.returncode == 0 and code == 3
             and rows.get("webapp", {}).get("state") == "stopped by hand"
             and rows.get("webapp1", {}).get("pid") == first["webapp1"],
             out=r.stdout, err=r.stderr, rows=rows)
    r = procmgmt(sc, mode, "start", "webapp")
    code, rows = status_rows(sc, mode)
    sc.check(f"{m}.day2.start", r.returncode == 0 and code == 0
             and rows.get("webapp", {}).get("state") == "running",
             out=r.stdout, err=r.stderr, rows=rows)
    http_get(ports_of(["webapp1"], mode.port_base)["webapp1"])  # a request it logs
    lines: list[str] = []
    for _ in range(20):  # the journal may take a moment
        lines = procmgmt(sc, mode, "logs", "-n", "20", "webapp1").stdout.splitlines()
        if any("GET /" in ln for ln in lines):
            break
        time.sleep(0.1)
    sc.check(f"{m}.day2.logs", any(ln.startswith("webapp1 | ") and "GET /" in ln
                                   for ln in lines), lines=lines)


def webapps_scenario(sc: Scenario, mode: Mode) -> None:
    """switch, switch to advanced, rollback, undeploy, delete generations: in ``mode``.

    Every process must run with the uid and gid of its mode in all four
    /proc/<pid>/status fields: its own account (system mode, accounts created
    by procmgmt), root (``--force-disable-user-change``) or the user manager's
    user. In system mode the accounts follow the generations; with user
    changes disabled no account line changes at all.
    """
    m = mode.name
    ex = f"{MOUNT}/examples/webapps"
    params = ["--extra-params", json.dumps({"port_base": mode.port_base})]
    lines_before = account_lines(WEBAPP_ACCOUNTS)

    def unit(name: str) -> str:
        return f"{PREFIX}{name}.service"

    def expected_ids(name: str) -> tuple[int, int] | None:
        if mode.user:
            pw = pwd.getpwnam(mode.user)  # the user manager runs everything as its user
            return pw.pw_uid, pw.pw_gid
        if mode.no_user_change:
            return 0, 0
        return account_ids(name)

    def active(names: Sequence[str], step: str) -> dict[str, int]:
        pids = {}
        ports = ports_of(names, mode.port_base)
        for n in names:
            props = show(sc, mode, unit(n), "ActiveState", "MainPID", "Type", "FragmentPath",
                         "User", "Group")
            pid = int(props.get("MainPID", "0") or 0)
            page = http_get(ports[n])
            ids = proc_ids(pid) if pid else None
            want = expected_ids(n)
            sc.check(f"{m}.{step}.{n}.active",
                     props.get("ActiveState") == "active" and page is not None
                     and f"instance: {n}" in page and want is not None
                     and props.get("User") == (n if mode.manages_accounts else "")
                     and ids == ([want[0]] * 4, [want[1]] * 4),
                     props=props, page=page, ids=ids, expected=want)
            pids[n] = pid
        return pids

    def inactive(names: Sequence[str], step: str) -> None:
        ports = ports_of(names, mode.port_base)
        for n in names:
            props = show(sc, mode, unit(n), "ActiveState", "LoadState")
            sc.check(f"{m}.{step}.{n}.inactive",
                     props.get("ActiveState") in ("inactive", "failed")
                     and port_closed(ports[n])
                     and not os.path.lexists(os.path.join(mode.target_dir, unit(n))),
                     props=props)

    def accounts(step: str, present: Sequence[str], out: str = "") -> None:
        """System mode: exactly ``present`` of the webapp accounts exist. No user change
        (root): not one account line changed. The user mode cannot touch accounts."""
        if mode.manages_accounts:
            now = accounts_present(WEBAPP_ACCOUNTS)
            sc.check(f"{m}.{step}.accounts",
                     now == {n: n in present for n in WEBAPP_ACCOUNTS}, present=now,
                     want=sorted(present), out=out)
        elif mode.no_user_change:
            lines = account_lines(WEBAPP_ACCOUNTS)
            sc.check(f"{m}.{step}.accounts_untouched", lines == lines_before,
                     before=lines_before, now=lines)

    r = procmgmt(sc, mode, "switch", "-P", "systemd", f"{ex}/processes.py", *params)
    sc.check(f"{m}.switch1.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    accounts("switch1", FIRST_NAMES, r.stdout)
    if mode.manages_accounts:
        sc.check(f"{m}.switch1.created_before_start",
                 all(0 <= r.stdout.find(f"created user {n} ") < r.stdout.find(f"starting {n}\n")
                     for n in FIRST_NAMES), out=r.stdout)
    first = active(FIRST_NAMES, "switch1")
    # Only this scenario's units: the extras profile shares the system target dir.
    ours = {unit(n) for n in ("webapp", *ADVANCED_NAMES)}
    links = sorted(n for n in os.listdir(mode.target_dir) if n in ours) \
        if os.path.isdir(mode.target_dir) else []
    link_target = (os.readlink(os.path.join(mode.target_dir, unit("webapp")))
                   if unit("webapp") in links else "")
    sc.check(f"{m}.switch1.links", links == sorted(unit(n) for n in FIRST_NAMES)
             and "/store/" in link_target, links=links, target=link_target)
    st = procmgmt(sc, mode, "status")
    sc.check(f"{m}.status", st.returncode == 0 and st.stdout.count(" running ") == 2
             and f"pid {first['webapp1']}" in st.stdout, out=st.stdout, err=st.stderr)
    day_two(sc, mode, first)
    # A directory the service user owns: deleting the user must not delete it.
    data = Path(mode.state_dir or "/nonexistent") / "lib" / "webapp-data"
    owner = account_ids("webapp") if mode.manages_accounts else None
    if owner:
        data.mkdir(parents=True, exist_ok=True)
        os.chown(data, *owner)

    r = procmgmt(sc, mode, "switch", "-P", "systemd", "--replace",
                 f"{ex}/processes-advanced.py", *params)
    sc.check(f"{m}.switch2.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    accounts("switch2", ADVANCED_NAMES, r.stdout)
    if mode.manages_accounts:
        out = r.stdout
        sc.check(f"{m}.switch2.account_order",
                 0 <= out.find("created user webapp2 ") < out.find("starting webapp2\n")
                 and 0 <= out.find("stopping webapp\n") < out.find("deleted user webapp ")
                 and "created user webapp1 " not in out, out=out)
    inactive(["webapp"], "switch2")
    second = active(ADVANCED_NAMES, "switch2")
    sc.check(f"{m}.switch2.webapp1_kept", second["webapp1"] == first["webapp1"] != 0,
             before=first["webapp1"], after=second["webapp1"])
    deps = show(sc, mode, unit("webapp4"), "After", "Wants")
    sc.check(f"{m}.switch2.ordering",
             all(unit(d) in deps.get(k, "").split() for d in ("webapp2", "webapp3")
                 for k in ("After", "Wants")), props=deps)
    starts = {n: int(show(sc, mode, unit(n), "ActiveEnterTimestampMonotonic")
                     .get("ActiveEnterTimestampMonotonic", "0") or 0) for n in ADVANCED_NAMES}
    sc.check(f"{m}.switch2.start_order",
             starts["webapp1"] < starts["webapp2"] < starts["webapp4"]
             and starts["webapp3"] < starts["webapp4"] and starts["webapp5"] < starts["webapp6"],
             starts=starts)
    if owner:
        st_data = data.stat() if data.is_dir() else None
        sc.check(f"{m}.switch2.data_kept", st_data is not None
                 and (st_data.st_uid, st_data.st_gid) == owner, owner=owner,
                 now=st_data and (st_data.st_uid, st_data.st_gid))

    r = procmgmt(sc, mode, "switch", "--rollback")
    sc.check(f"{m}.rollback.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    accounts("rollback", FIRST_NAMES, r.stdout)
    third = active(FIRST_NAMES, "rollback")
    inactive(ADVANCED_NAMES[1:], "rollback")
    sc.check(f"{m}.rollback.webapp1_kept", third["webapp1"] == first["webapp1"],
             before=first["webapp1"], after=third["webapp1"])

    r = procmgmt(sc, mode, "switch", "-P", "systemd", "--undeploy")
    sc.check(f"{m}.undeploy.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    accounts("undeploy", (), r.stdout)
    inactive(("webapp", *ADVANCED_NAMES), "undeploy")
    listed = run(sc, mode, ["systemctl", *(["--user"] if mode.user else []), "list-units",
                            "--no-legend", "--plain", "--state=active",
                            *sorted(ours)]).stdout
    sc.check(f"{m}.undeploy.none_active", listed.strip() == "", listed=listed)
    if mode.state_dir and not mode.user:
        state = Path(mode.state_dir)
        record = state / "lib" / "procmgmt" / "accounts.json"
        recorded = json.loads(record.read_text()) if record.exists() else None
        kept = {d: (state / d).is_dir() for d in ("log", "tmp", "run", "lib")}
        sc.check(f"{m}.undeploy.dirs_kept", all(kept.values())
                 and (data.is_dir() if owner else True), kept=kept, data=str(data))
        sc.check(f"{m}.undeploy.record",
                 recorded is not None and recorded["users"] == {} and recorded["groups"] == {}
                 if mode.manages_accounts else recorded is None, record=recorded)

    r = procmgmt(sc, mode, "switch", "--delete-all-generations")
    sc.check(f"{m}.delete_all.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    r = procmgmt(sc, mode, "switch", "--list-generations")
    sc.check(f"{m}.list_generations.empty", r.returncode == 0 and r.stdout.strip() == "",
             out=r.stdout, err=r.stderr)


#: Model of the "extras" profile: initialize as root before a process running
#: as another user (the ``+`` prefix), a forking daemon (Type=forking +
#: PIDFile=), and a dump of argv and environment for the quoting round trip.
EXTRAS_MODEL = '''
import dataclasses, json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "examples", "webapps"))
from constructors import webapp
from procmgmt import Instance, Process, Settings

HERE = os.path.dirname(os.path.abspath(__file__))


def processes(settings: Settings) -> dict:
    cfg = json.load(open(os.path.join(HERE, "config.json")))
    out = settings.extra_params["out"]
    daemon_settings = dataclasses.replace(settings, extra_params={"webapp_mode": "daemon"})
    daemon = webapp(daemon_settings)(port=cfg["extra_port_base"], instance_suffix="d")
    init = Process(
        name="initcheck", user="webappd",
        initialize=f"id -u > {out}/initialize-uid\\nchmod 644 {out}/initialize-uid",
        foreground_process="/bin/sleep", foreground_process_args=["1000"])
    dump = Process(
        name="quoting", foreground_process=sys.executable,
        foreground_process_args=[os.path.join(HERE, "systemd_nspawn.py"), "dump",
                                 f"{out}/quoting.json", *cfg["quoting"]["argv"]],
        environment=cfg["quoting"]["environment"])
    return {"webappd": Instance(daemon), "initcheck": Instance(init),
            "quoting": Instance(dump)}
'''


def extras_scenario(sc: Scenario, mode: Mode, config: dict[str, Any]) -> None:
    """Type=forking, initialize as root via ``+``, and the quoting round trip."""
    model = Path(MOUNT) / "extras.py"
    model.write_text(EXTRAS_MODEL, encoding="utf-8")
    out = Path("/var/lib/pmtest-out")
    out.mkdir(mode=0o777, exist_ok=True)
    r = procmgmt(sc, mode, "switch", "-P", "systemd", "-p", "extras", str(model),
                 "--extra-params", json.dumps({"out": str(out)}))
    sc.check("extras.switch.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    sc.check("extras.account_created", "created user webappd " in r.stdout
             and account_ids("webappd") is not None, out=r.stdout)
    props = show(sc, mode, f"{PREFIX}webappd.service", "ActiveState", "Type", "MainPID",
                 "PIDFile")
    pid_text = Path(props.get("PIDFile") or "/nonexistent").read_text().strip() \
        if props.get("PIDFile") and os.path.exists(props["PIDFile"]) else ""
    sc.check("extras.forking", props.get("Type") == "forking"
             and props.get("ActiveState") == "active" and pid_text == props.get("MainPID")
             and http_get(config["extra_port_base"]) is not None, props=props, pid=pid_text)
    init_uid = (out / "initialize-uid").read_text().strip() \
        if (out / "initialize-uid").exists() else None
    ipid = int(show(sc, mode, f"{PREFIX}initcheck.service", "MainPID").get("MainPID", "0"))
    user_uid = int(run(sc, mode, ["id", "-u", "webappd"]).stdout.strip() or -1)
    sc.check("extras.initialize_as_root", init_uid == "0" and proc_uid(ipid) == user_uid,
             initialize_uid=init_uid, process_uid=proc_uid(ipid), user_uid=user_uid)
    dumped = json.loads((out / "quoting.json").read_text()) \
        if (out / "quoting.json").exists() else None
    want = config["quoting"]
    got_env = {k: (dumped or {}).get("environment", {}).get(k) for k in want["environment"]}
    sc.check("extras.quoting.argv", dumped is not None and dumped["argv"] == want["argv"],
             got=dumped and dumped["argv"], want=want["argv"])
    sc.check("extras.quoting.environment", got_env == want["environment"],
             got=got_env, want=want["environment"])
    r = procmgmt(sc, mode, "switch", "-P", "systemd", "-p", "extras", "--undeploy")
    sc.check("extras.undeploy.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    sc.check("extras.account_deleted", accounts_present(["webappd"]) == {"webappd": False},
             out=r.stdout)


#: Model of the "ops" profiles: a server that restarts always, stops within 3 s,
#: reloads on SIGHUP (it prints "reloaded N"), closes its listener on SIGUSR1 (hung
#: as far as a client can tell) and has a TCP liveness check.
OPS_MODEL = '''
from procmgmt import Process
from procmgmt.readiness import TCP, Liveness

SERVER = ("import os, signal, socket, sys, time; s = socket.socket(); "
          "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
          "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(16); n = [0]; "
          "signal.signal(signal.SIGHUP, lambda *_: (n.__setitem__(0, n[0] + 1), "
          "print('reloaded', n[0], flush=True))); "
          "signal.signal(signal.SIGUSR1, lambda *_: (s.close(), print('hanging', flush=True), "
          "[time.sleep(60) for _ in iter(int, 1)])); "
          "print('listening', os.getpid(), flush=True); "
          "[s.accept()[0].close() for _ in iter(int, 1)]")


def processes(settings):
    port = settings.extra_params["port"]
    return {"server": Process(
        name="server", foreground_process="/usr/bin/python3",
        foreground_process_args=["-c", SERVER, str(port)], restart="always",
        stop_timeout=3, reload_signal="HUP", readiness=TCP(port=port),
        liveness=Liveness(TCP(port=port), period=0.3, failures=2, delay=2))}
'''


#: A process that exits at once: its switch fails and is undone.
CRASH_MODEL = '''
from procmgmt import Process


def processes(settings):
    return {"crasher": Process(name="crasher", foreground_process="/bin/sh",
                               foreground_process_args=["-c", "echo crashing; exit 3"])}
'''


def _wait(what: Callable[[], Any], timeout: float = 15.0) -> Any:
    """``what()`` once it is truthy (polled), or its last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = what()
    while not value and time.monotonic() < deadline:
        time.sleep(0.2)
        value = what()
    return value


def operations_scenario(sc: Scenario, mode: Mode, port: int) -> None:
    """Day-two operations on one process: status fields (restart policy and count,
    liveness), the stop timeout in the unit, reload (same MainPID, the program's
    journal line), ``logs --since`` (only what came after T), and a liveness
    restart (a new MainPID, NRestarts and ``restarts`` 1, the watcher's lines in
    ``logs``) followed by ``logs -f`` across it; then undeploy."""
    m = f"{mode.name}ops"
    model = Path(MOUNT) / "ops.py"
    model.write_text(OPS_MODEL, encoding="utf-8")
    profile = ["-P", "systemd", "-p", f"ops{mode.name}"]
    unit = f"{PREFIX}server.service"
    r = procmgmt(sc, mode, "switch", *profile, str(model), "--extra-params",
                 json.dumps({"port": port}))
    sc.check(f"{m}.switch.rc", r.returncode == 0, out=r.stdout, err=r.stderr)
    _, rows = status_rows(sc, mode, *profile)
    row = rows.get("server", {})
    sc.check(f"{m}.status", row.get("restart") == "always" and row.get("restarts") == 0
             and "tcp 127.0.0.1" in str(row.get("liveness")), row=row)
    props = show(sc, mode, unit, "TimeoutStopUSec", "MainPID")
    sc.check(f"{m}.stop_timeout", props.get("TimeoutStopUSec") == "3s", props=props)
    first = int(props.get("MainPID") or 0)

    def logs(*args: str) -> str:
        return str(procmgmt(sc, mode, "logs", *profile, *args, "server").stdout)

    r = procmgmt(sc, mode, "reload", *profile, "server")
    once = _wait(lambda: "reloaded 1" in logs("-n", "20"))
    after = int(show(sc, mode, unit, "MainPID").get("MainPID") or 0)
    sc.check(f"{m}.reload", r.returncode == 0 and once and after == first,
             out=r.stdout, err=r.stderr, first=first, after=after)
    time.sleep(1.1)
    since = time.strftime("%Y-%m-%dT%H:%M:%S")  # local time, as journalctl reads it
    time.sleep(1.1)
    procmgmt(sc, mode, "reload", *profile, "server")
    twice = _wait(lambda: "reloaded 2" in logs("-n", "20"))
    text = logs("--since", since)
    sc.check(f"{m}.logs_since", twice and "reloaded 2" in text and "reloaded 1" not in text,
             since=since, text=text)

    new = 0
    follow = subprocess.Popen(mode.wrap([SYSTEM_PYTHON, "-m", "procmgmt", "logs", "-f",
                                         *profile, "server",
                                         *(["--state-dir", mode.state_dir]
                                           if mode.state_dir else [])]),
                              env=mode.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        os.kill(first, signal.SIGUSR1)
        new = _wait(lambda: (pid := int(show(sc, mode, unit, "MainPID").get("MainPID") or 0))
                    not in (0, first) and not port_closed(port) and pid)
        _, rows = status_rows(sc, mode, *profile)
        row = rows.get("server", {})
        counted = show(sc, mode, unit, "NRestarts").get("NRestarts")
        sc.check(f"{m}.liveness_restart", bool(new) and row.get("restarts") == 1
                 and counted == "1" and row.get("pid") == new, new=new, row=row,
                 nrestarts=counted)
        text = logs("-n", "40")
        sc.check(f"{m}.liveness_logs", "liveness check failed (2 of 2 in a row" in text
                 and f"killing pid {first}" in text, text=text)
        time.sleep(1.0)  # the journal reaches the follower
    finally:
        follow.terminate()
        try:
            followed = follow.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            follow.kill()
            followed = follow.communicate()[0]
    sc.check(f"{m}.logs_follow", f"killing pid {first}" in followed
             and f"listening {new}" in followed, followed=followed, new=new)
    r = procmgmt(sc, mode, "switch", *profile, "--undeploy")
    state = show(sc, mode, unit, "ActiveState").get("ActiveState")
    sc.check(f"{m}.undeploy", r.returncode == 0 and state != "active" and port_closed(port),
             out=r.stdout, err=r.stderr, state=state)
    # A unit that failed in a switch that was undone is not left behind as a
    # failed unit (systemd keeps it loaded, "not-found failed", until reset-failed).
    model = Path(MOUNT) / "crash.py"
    model.write_text(CRASH_MODEL, encoding="utf-8")
    r = procmgmt(sc, mode, "switch", *profile, str(model))
    listed = run(sc, mode, ["systemctl", *(["--user"] if mode.user else []), "list-units",
                            "--all", "--plain", "--no-legend", f"{PREFIX}crasher.service"])
    sc.check(f"{m}.crash_forgotten", r.returncode != 0
             and "crasher" in r.stderr and not listed.stdout.strip(),
             out=r.stdout, err=r.stderr, listed=listed.stdout)


def dump(path: str, argv: Sequence[str]) -> None:
    """The quoting probe: write argv and environment as JSON, then wait to be stopped."""
    Path(path).write_text(json.dumps({"argv": list(argv), "environment": dict(os.environ)}),
                          encoding="utf-8")
    while True:
        time.sleep(3600)


#: The ids of the system accounts the scenarios create inside (SYS_UID/GID_MIN..MAX
#: of the container's login.defs, which procmgmt and useradd choose from): the
#: host's /proc shows the container's processes under their uid, and a test on
#: the host that ends the processes of its own account (``kill_uid``) must never
#: meet one of them under an id both picked from the same default range.
CONTAINER_SYSTEM_IDS = (59000, 59999)


def own_id_band(path: str = "/etc/login.defs") -> None:
    """Point the container's system account range at :data:`CONTAINER_SYSTEM_IDS`
    (the throw-away overlay root's copy of login.defs, not the host's)."""
    keys = ("SYS_UID_MIN", "SYS_UID_MAX", "SYS_GID_MIN", "SYS_GID_MAX")
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines()
             if not line.lstrip("#").split()[:1] or line.lstrip("#").split()[0] not in keys]
    low, high = CONTAINER_SYSTEM_IDS
    lines += [f"SYS_UID_MIN {low}", f"SYS_UID_MAX {high}", f"SYS_GID_MIN {low}",
              f"SYS_GID_MAX {high}"]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def create_test_user() -> int:
    """Create :data:`TEST_USER` (before any scenario runs: the system scenario's
    account changes must not race with this ``useradd``); its uid."""
    subprocess.run(["useradd", "--uid", str(TEST_UID), "--create-home", "--home-dir",
                    f"/home/{TEST_USER}", "--shell", "/bin/sh", TEST_USER], check=True)
    return pwd.getpwnam(TEST_USER).pw_uid


def user_manager(sc: Scenario, uid: int, report: bool = True) -> Mode:
    """Start the user manager of :data:`TEST_USER` (it may be started already: two
    scenarios use it side by side); the user mode. ``report``: check that it runs."""
    subprocess.run(["systemctl", "start", f"user@{uid}.service"], check=True, timeout=60)
    mode = Mode("user", TEST_USER, uid, USER_PORT_BASE, None,
                f"/home/{TEST_USER}/.config/systemd/user")
    state = run(sc, mode, ["systemctl", "--user", "is-system-running", "--wait"]).stdout.strip()
    if report:
        sc.check("user.manager_running", state in ("running", "degraded"), state=state)
    return mode


def services_step(sc: Scenario, config: dict[str, Any]) -> None:
    """The service catalogue scenario (:mod:`systemd_services`, next to this file)."""
    sys.path.insert(0, MOUNT)
    import systemd_services  # type: ignore[import-not-found]

    systemd_services.scenario(sc, config)


def user_services_step(sc: Scenario, config: dict[str, Any], uid: int) -> None:
    """The catalogue again, in the user manager of :data:`TEST_USER` (unprivileged)."""
    sys.path.insert(0, MOUNT)
    import systemd_services

    systemd_services.user_scenario(sc, config, uid)


def scenario() -> int:
    """Container entry point: every scenario, each check on the console."""
    config = json.loads((Path(MOUNT) / "config.json").read_text())
    sc = Scenario(Path(MOUNT) / "results" / "scenario.log")
    wanted = config.get("steps", ["system", "extras", "nochange", "user"])
    own_id_band()
    uid = create_test_user() if {"user", "userservices"} & set(wanted) else -1
    steps: dict[str, Callable[[], None]] = {
        "system": lambda: webapps_scenario(sc, Mode("system", state_dir="/srv/pmtest-system")),
        "extras": lambda: extras_scenario(sc, Mode("extras", state_dir="/srv/pmtest-extras"),
                                          config),
        "nochange": lambda: webapps_scenario(sc, Mode(
            "nochange", port_base=NOCHANGE_PORT_BASE, state_dir="/srv/pmtest-nochange",
            no_user_change=True)),
        "user": lambda: webapps_scenario(sc, user_manager(sc, uid)),
        "ops": lambda: operations_scenario(sc, Mode("system", state_dir="/srv/pmtest-ops"),
                                           OPS_PORT),
        "userops": lambda: operations_scenario(sc, user_manager(sc, uid, report=False),
                                               OPS_PORT + 1),
        "services": lambda: services_step(sc, config),
        "userservices": lambda: user_services_step(sc, config, uid),
    }

    def chain(names: Sequence[str]) -> None:
        for name in names:
            if name not in wanted:
                continue
            t0 = time.monotonic()
            try:
                steps[name]()
                sc.check(f"{name}.completed", True, seconds=round(time.monotonic() - t0, 2))
            except Exception:
                sc.check(f"{name}.completed", False, error=traceback.format_exc())

    # The system and user managers are independent: run their scenarios side by side
    # (different ports, state dirs and unit dirs) to keep the boot short. The root
    # scenarios stay in one thread: "nochange" checks that no account line changes.
    # "userservices" follows "services": its undeploy check wants no process of the
    # test user but its manager, and both deploy units named procmgmt-nginx. (For the
    # same reason "user" and "userservices" are never wanted in one boot.)
    threads = [threading.Thread(target=chain, args=(c,))
               for c in (["system", "extras", "nochange"], ["user"], ["ops"], ["userops"],
                         ["services", "userservices"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(RESULT_MARK + json.dumps({"done": True}), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["scenario"]:
        sys.exit(scenario())
    if sys.argv[1:2] == ["dump"]:
        dump(sys.argv[2], sys.argv[3:])
    sys.exit(f"usage: {sys.argv[0]} scenario | dump FILE ARGS...")
