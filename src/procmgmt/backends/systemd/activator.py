"""Activating systemd units: links into the target dir, ``systemctl`` for the rest.

The activator links (never copies) the store's unit files into the target
dir: a copy would lose the store location that ``%Y`` resolves to, and a
link makes the deployed unit exactly the reviewed, immutable store file.
Every ``systemctl`` call goes through a :data:`~procmgmt.backends._activation.Runner`
(tests record the plan).
"""

from __future__ import annotations

import os
import threading
import time

from procmgmt import fsutil
from procmgmt.backends._activation import (
    TIMED_OUT,
    CommandResult,
    Runner,
    subprocess_runner,
)
from procmgmt.backends.base import (
    Activator,
    LogSource,
    ProcessStatus,
    Tool,
)
from procmgmt.backends.systemd.naming import UNIT_DIR, USER_ENV, target_dir, unit_name, user_mode
from procmgmt.errors import DeployError, UsageError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import Settings
from procmgmt.testhooks import fail_point

#: Seconds a started unit must stay active: Type=simple reports success at fork.
START_GRACE = 0.5
#: Timeout of one systemctl call (systemd's default stop timeout is 90 s).
SYSTEMCTL_TIMEOUT = 120
#: Lines of ``systemctl status`` quoted when a unit fails.
STATUS_LINES = 20


def _unit_of(proc: DeployedProcess) -> str:
    return str(proc.extra.get("unit") or unit_name(proc.name))


def _unit_file_of(proc: DeployedProcess) -> str:
    rel = proc.extra.get("unit_file") or f"{UNIT_DIR}/{_unit_of(proc)}"
    return os.path.join(proc.path, str(rel))


class SystemdActivator(Activator):
    """Installs units as symlinks to the store and starts them with systemctl.

    ``runner`` stands in for running systemctl (tests record the command plan);
    without one, each call is a subprocess with :data:`SYSTEMCTL_TIMEOUT` and the
    user manager's ``XDG_RUNTIME_DIR`` filled in when needed.
    """

    #: start/stop/status are separate systemctl calls on separate units, and
    #: systemd queues jobs itself: safe to run in parallel (the link
    #: bookkeeping in stop is guarded by a lock).
    parallel_safe = True

    def __init__(self, settings: Settings, runner: Runner | None = None) -> None:
        super().__init__(settings)
        self.runner = runner
        self._lock = threading.Lock()
        self.user = user_mode()
        self.target_dir = target_dir()
        #: Units of the generation being activated (set by prepare).
        self._new_units: dict[str, str] = {}
        #: Links this activator created, candidates for removal in finish.
        self._installed: set[str] = set()
        #: A link went away since the last daemon-reload.
        self._reload_needed = False

    # systemctl plumbing

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.user and not env.get("XDG_RUNTIME_DIR"):
            runtime = f"/run/user/{os.getuid()}"
            if os.path.isdir(runtime):
                env["XDG_RUNTIME_DIR"] = runtime
        return env

    def systemctl(self, *args: str, check: bool = True) -> CommandResult:
        """Run ``systemctl [--user] ARGS``; DeployError on failure when ``check``."""
        cmd = ["systemctl", *(["--user"] if self.user else []), "--no-ask-password", *args]
        if self.runner is not None:
            result = self.runner(cmd)
        else:
            result = subprocess_runner(cmd, env=self._env(), timeout=SYSTEMCTL_TIMEOUT)
        if check and result.returncode == TIMED_OUT:
            raise DeployError(f"'{' '.join(cmd)}' did not finish within "
                              f"{SYSTEMCTL_TIMEOUT} s")
        if check and result.returncode != 0:
            raise DeployError(f"'{' '.join(cmd)}' failed with exit status {result.returncode}: "
                              f"{result.output.strip()}")
        return result

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """Properties of ``unit`` from ``systemctl show``."""
        result = self.systemctl("show", *(f"--property={p}" for p in props), unit)
        out = {}
        for line in result.output.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key] = value
        return out

    # links

    def _link_path(self, unit: str) -> str:
        return os.path.join(self.target_dir, unit)

    def _our_link(self, link: str) -> bool:
        """A symlink into procmgmt's store: never touch units someone else installed."""
        if not os.path.islink(link):
            return False
        target = os.readlink(link)
        store = os.path.join(self.settings.store_dir, "")
        return target.startswith(store)

    def _install(self, proc: DeployedProcess) -> None:
        unit = _unit_of(proc)
        link, source = self._link_path(unit), _unit_file_of(proc)
        if os.path.islink(link) and os.readlink(link) == source:
            self._installed.add(unit)
            return
        if os.path.lexists(link) and not self._our_link(link):
            raise DeployError(f"{proc.name}: {link} exists and was not installed by procmgmt; "
                              "remove it or choose another PROCMGMT_SYSTEMD_PREFIX")
        tmp = f"{link}.procmgmt-tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(source, tmp)
        os.replace(tmp, link)  # atomic: the unit is never missing
        self._installed.add(unit)

    def _remove_link(self, unit: str) -> bool:
        link = self._link_path(unit)
        if self._our_link(link):
            os.unlink(link)
            self._reload_needed = True
            return True
        return False

    # the Activator contract

    def _privilege_problem(self) -> str | None:
        if not self.user and os.geteuid() != 0:
            return (f"the systemd system manager needs root; set {USER_ENV}=1 to deploy to "
                    "your own user manager")
        return None

    def required_tools(self, gen: Generation) -> list[Tool]:
        """systemctl."""
        return [Tool("systemctl", "systemctl", "the systemd backend needs a machine that "
                     "runs systemd; deploy with another process manager (-P)")]

    def preflight(self, gen: Generation) -> list[str]:
        """systemctl present, root for the system manager, and a manager that answers
        (in user mode: the user's bus, which a login without a session lacks)."""
        problems = super().preflight(gen)
        privilege = self._privilege_problem()
        if problems or privilege:
            return [*problems, *([privilege] if privilege else [])]
        result = self.systemctl("show", "--property=Version", check=False)
        if result.returncode != 0:
            which = "your user manager" if self.user else "the system manager"
            hint = (" (in user mode it needs a login session with a bus: "
                    "'loginctl enable-linger' and XDG_RUNTIME_DIR)" if self.user else "")
            problems.append(f"cannot reach {which} with systemctl{hint}: "
                            f"{result.output.strip()}")
        return problems

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Link every unit of ``new`` (old units stay until stopped), daemon-reload."""
        privilege = self._privilege_problem()
        if privilege:
            raise UsageError(privilege)
        fsutil.ensure_dir(self.target_dir)
        self._new_units = {_unit_of(p): _unit_file_of(p) for p in new.processes}
        # Only after a failed switch does this activator hold links already:
        # units it started for the failed generation and has stopped again.
        for unit in sorted(self._installed - set(self._new_units)):
            state = self.show(unit, "ActiveState").get("ActiveState")
            if state in ("inactive", "failed") and self._remove_link(unit):
                self._installed.discard(unit)
        for p in new.processes:
            self._install(p)
        fail_point("reload")
        self.systemctl("daemon-reload")

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """``systemctl start``, then the unit must stay active for a short grace time."""
        unit = _unit_of(proc)
        result = self.systemctl("start", unit, check=False)
        state = {}
        if result.returncode == 0:
            deadline = time.monotonic() + START_GRACE
            while True:
                state = self.show(unit, "ActiveState", "SubState", "Result")
                if state.get("ActiveState") != "active" or time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
            if state.get("ActiveState") == "active":
                return
        why = (result.output.strip() if result.returncode != 0
               else f"it is {state.get('ActiveState')}/{state.get('SubState')} "
                    f"(result {state.get('Result')}) right after starting")
        raise DeployError(f"{proc.name}: systemd could not start {unit}: {why}\n"
                          + self._diagnostics(unit))

    def _diagnostics(self, unit: str) -> str:
        status = self.systemctl("status", "--no-pager", "--full", f"--lines={STATUS_LINES}",
                                unit, check=False)
        return "\n".join(status.output.rstrip().splitlines()[-40:])

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``systemctl stop``; the link goes unless the new generation has this very file."""
        unit = _unit_of(proc)
        result = self.systemctl("stop", unit, check=False)
        if result.returncode != 0:
            load = self.show(unit, "LoadState").get("LoadState")
            if load not in ("not-found", "masked"):
                raise DeployError(f"{proc.name}: systemctl stop {unit} failed: "
                                  f"{result.output.strip()}\n" + self._diagnostics(unit))
        # A changed unit keeps its name: prepare already pointed the link at the
        # new file, which must stay.
        with self._lock:
            if unit not in self._new_units and self._remove_link(unit):
                self._installed.discard(unit)
                self._reload_needed = True

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """ActiveState, MainPID and NRestarts (restarts by ``Restart=``) from
        ``systemctl show``."""
        unit = _unit_of(proc)
        props = self.show(unit, "ActiveState", "SubState", "MainPID", "NRestarts")
        active = props.get("ActiveState", "unknown")
        pid = int(props.get("MainPID") or 0) or None
        count = props.get("NRestarts", "")  # empty before systemd 235
        return ProcessStatus(proc.name, active in ("active", "reloading"), pid,
                             detail=f"{unit} {active}/{props.get('SubState', '?')}",
                             restarts=int(count) if count.isdigit() else None)

    def log_source(self, gen: Generation, proc: DeployedProcess) -> LogSource:
        """systemd keeps a unit's stdout and stderr in the journal: ``journalctl -u``
        (``--user-unit`` for the user's systemd)."""
        return LogSource(journal=("--user-unit" if self.user else "-u", _unit_of(proc)))

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """``reload`` goes to systemctl; the rest as for every activator."""
        if activity == "reload":
            return self.systemctl("reload", _unit_of(proc), check=False).returncode
        return super().activity(gen, proc, activity)

    def finish(self, new: Generation, old: Generation | None) -> None:
        """Remove leftover links of units not in ``new``, then daemon-reload, then
        forget the failed state of the units that are gone.

        systemd keeps a unit that failed loaded after its file is gone
        (``not-found failed`` in ``systemctl list-units``, and in ``--failed``)
        until ``reset-failed``: a process that crashed in a switch that was then
        undone, or in the generation an undeploy removed, would stay listed as a
        failed unit of ours for good. Its log stays in the journal."""
        keep = {_unit_of(p) for p in new.processes}
        candidates = set(self._installed)
        if old is not None:
            candidates |= {_unit_of(p) for p in old.processes}
        gone = sorted(candidates - keep)
        removed = [u for u in gone if self._remove_link(u)]
        self._installed &= keep
        if removed or self._reload_needed:
            self.systemctl("daemon-reload")
            self._reload_needed = False
        if gone:
            # check=False: units that never failed (or never loaded) are refused
            # one by one, which is fine.
            self.systemctl("reset-failed", *gone, check=False)
