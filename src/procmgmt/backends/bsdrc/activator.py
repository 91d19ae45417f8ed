"""Running the generated rc.d scripts on a FreeBSD host (see :class:`BSDRCActivator`)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from procmgmt import fsutil
from procmgmt.backends import _activation
from procmgmt.backends._activation import (
    CommandResult,
    Runner,
    pid_file_status,
    subprocess_runner,
)
from procmgmt.backends.base import (
    Activator,
    ProcessStatus,
    Tool,
)
from procmgmt.backends.bsdrc.model import DEFAULT_RC_SUBR, var_prefix
from procmgmt.backends.bsdrc.parse import RcScript, parse_file
from procmgmt.backends.bsdrc.rcconf import set_rc_conf, unset_rc_conf
from procmgmt.backends.bsdrc.rcorder import dependency_graph, rcorder, violations
from procmgmt.backends.shared import ready
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.settings import SettingField, Settings

#: Activator defaults (environment variables override them).
DEFAULT_TARGET_DIR = "/usr/local/etc/rc.d"
DEFAULT_RC_CONF = "/etc/rc.conf"
#: Seconds the activator waits for a started process's pid file to name a live process.
DEFAULT_START_TIMEOUT = 10.0


def _engine_runner(argv: Sequence[str]) -> CommandResult:
    """The default runner: the scripts' own readiness wait is switched off, since
    the engine probes readiness itself, for all processes at once."""
    return subprocess_runner(argv, env={**os.environ, ready.READY_WAIT_ENV: "0"})


#: The backend's own settings (environment variables, listed by ``--help``).
ENABLE_AT_BOOT_SETTING = SettingField(
    "bsdrc_enable_at_boot", None, "PROCMGMT_BSDRC_ENABLE_AT_BOOT", "bool",
    "install the scripts into BSDRC_TARGET_DIR and enable them in BSDRC_RC_CONF, so "
    "they also start at boot", default=False)
TARGET_DIR_SETTING = SettingField(
    "bsdrc_target_dir", None, "PROCMGMT_BSDRC_TARGET_DIR", "path",
    "where boot mode installs the scripts", default=DEFAULT_TARGET_DIR)
RC_CONF_SETTING = SettingField(
    "bsdrc_rc_conf", None, "PROCMGMT_BSDRC_RC_CONF", "path",
    "the rc.conf boot mode enables the scripts in", default=DEFAULT_RC_CONF)
SETTINGS = (ENABLE_AT_BOOT_SETTING, TARGET_DIR_SETTING, RC_CONF_SETTING)


class BSDRCActivator(Activator):
    """Runs the generated scripts on a FreeBSD host.

    Default mode: ``<store script> onestart`` / ``onestop``, which works
    without enabling the rcvar and leaves rc.conf alone.

    Boot mode (``PROCMGMT_BSDRC_ENABLE_AT_BOOT=1``, read when the activator
    is created, i.e. by every switch, rollback and undeploy: the original's
    ``--enable-at-boot`` never reached its deploy step): start links the
    script as ``$PROCMGMT_BSDRC_TARGET_DIR/<name>`` (default
    /usr/local/etc/rc.d, the local rc.d directory itself, not its parent),
    writes ``<rcvar>="YES"`` into ``$PROCMGMT_BSDRC_RC_CONF`` (default
    /etc/rc.conf) like sysrc(8) and runs ``<link> start``. Stop undoes that
    whenever it finds our link, whatever the current mode, so an undeploy
    without the variable still cleans up: ``<link> stop``, the rc.conf
    line deleted, the link removed.

    Every command goes through ``runner`` (tests record the plan); status
    reads the pid file here.
    """

    def __init__(self, settings: Settings, runner: Runner | None = None,
                 environ: Mapping[str, str] | None = None,
                 start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        super().__init__(settings)
        env = os.environ if environ is None else environ
        #: Injected runners decide the environment themselves (set
        #: PROCMGMT_READY_WAIT=0 to leave readiness to the engine, as the default does).
        self.runner: Runner = runner or _engine_runner
        self.enable_at_boot = bool(ENABLE_AT_BOOT_SETTING.read(env))
        self.target_dir = str(TARGET_DIR_SETTING.read(env))
        self.rc_conf = str(RC_CONF_SETTING.read(env))
        self.start_timeout = start_timeout

    def required_tools(self, gen: Generation) -> list[Tool]:
        """The rc.subr every script sources (unless a runner stands in for the system)."""
        if self.runner is not _engine_runner:
            return []
        paths = sorted({str(p.extra.get("rc_subr") or DEFAULT_RC_SUBR) for p in gen.processes})
        return [Tool("rc.subr", path, "the bsdrc backend runs FreeBSD rc.d scripts; on this "
                     "machine deploy with another process manager (-P)") for path in paths]

    # --- paths -----------------------------------------------------------------------

    def script(self, proc: DeployedProcess) -> str:
        """The script inside ``proc``'s store entry."""
        return os.path.join(proc.path, str(proc.extra.get("script") or f"etc/rc.d/{proc.name}"))

    def link(self, proc: DeployedProcess) -> str:
        """Where boot mode links the script."""
        return os.path.join(self.target_dir, str(proc.extra.get("file") or proc.name))

    def rcvar(self, proc: DeployedProcess) -> str:
        """The process's ``<name>_enable`` variable."""
        return str(proc.extra.get("rcvar") or f"{var_prefix(proc.name)}_enable")

    def _our_link(self, proc: DeployedProcess) -> bool:
        link = self.link(proc)
        return os.path.islink(link) and os.path.realpath(link) == os.path.realpath(
            self.script(proc))

    # --- ordering --------------------------------------------------------------------

    def headers(self, gen: Generation) -> list[RcScript]:
        """The headers of ``gen``'s scripts, parsed back from the files."""
        scripts = []
        for p in gen.processes:
            parsed = parse_file(self.script(p))
            # Name graph nodes by process (file) name for comparison with the engine.
            scripts.append(RcScript(os.path.join(os.path.dirname(parsed.path), p.name),
                                    parsed.provides, parsed.requires, parsed.before,
                                    parsed.keywords))
        return scripts

    def rc_order(self, gen: Generation) -> list[str]:
        """Process names in rcorder order; DeployError on a circular dependency."""
        scripts = self.headers(gen)
        result = rcorder(scripts)
        if result.cycles:
            raise DeployError("the rc scripts' headers have a circular dependency: "
                              + "; ".join(" -> ".join(c) for c in result.cycles))
        return [s.name for s in result.order]

    def prepare(self, new: Generation, old: Generation | None) -> None:
        """Check that the engine's start order is one rcorder accepts (an override
        may have changed REQUIRE/PROVIDE), and create the boot-mode target dir."""
        self.rc_order(new)
        graph = dependency_graph(self.headers(new))
        bad = violations([p.name for p in new.processes], graph)
        if bad:
            raise DeployError("the rc scripts' REQUIRE/PROVIDE headers disagree with the "
                              "dependencies: " + ", ".join(f"{a} must start after {b}"
                                                           for a, b in bad))
        if self.enable_at_boot:
            fsutil.ensure_dir(self.target_dir)

    # --- commands --------------------------------------------------------------------

    def _fail(self, proc: DeployedProcess, argv: Sequence[str], result: CommandResult,
              what: str) -> DeployError:
        tail = _activation.tail(result.output)
        return DeployError(f"{proc.name}: '{' '.join(argv)}' {what} (exit status "
                           f"{result.returncode})" + (f":\n{tail}" if tail else ""))

    def start(self, gen: Generation, proc: DeployedProcess) -> None:
        """``onestart`` (or link + rc.conf + ``start``), then wait for the pid file."""
        if self.enable_at_boot:
            link = self.link(proc)
            tmp = f"{link}.procmgmt-new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.script(proc), tmp)
            os.replace(tmp, link)
            set_rc_conf(self.rc_conf, self.rcvar(proc), "YES")
            argv = [link, "start"]
        else:
            argv = [self.script(proc), "onestart"]
        result = self.runner(argv)
        if result.returncode != 0:
            raise self._fail(proc, argv, result, "failed")
        deadline = time.monotonic() + self.start_timeout
        while not self.status(gen, proc).running:
            if time.monotonic() >= deadline:
                st = self.status(gen, proc)
                raise self._fail(proc, argv, result,
                                 f"returned, but {st.detail} after {self.start_timeout:.0f} s")
            time.sleep(0.05)

    def stop(self, gen: Generation, proc: DeployedProcess) -> None:
        """``onestop`` (``stop`` and boot-mode cleanup when our link is installed).

        rc.subr's stop fails for a process that is not running; that is
        success here (it is stopped), anything else is an error.
        """
        boot = self._our_link(proc)
        argv = [self.link(proc), "stop"] if boot else [self.script(proc), "onestop"]
        result = self.runner(argv)
        if result.returncode != 0 and self.status(gen, proc).running:
            raise self._fail(proc, argv, result, "failed")
        if boot:
            unset_rc_conf(self.rc_conf, self.rcvar(proc))
            os.unlink(self.link(proc))

    def status(self, gen: Generation, proc: DeployedProcess) -> ProcessStatus:
        """The pid file names a live process (read here, no command run); the
        first word of its first line, as rc.subr reads it."""
        return pid_file_status(proc, self.settings)

    def activity(self, gen: Generation, proc: DeployedProcess, activity: str) -> int:
        """start/stop/status here; any other rc.subr command (reload, restart, rcvar,
        ...) runs through the script, with the ``one`` prefix unless boot mode
        installed it."""
        if activity in ("start", "stop", "status"):
            return super().activity(gen, proc, activity)
        boot = self._our_link(proc)
        argv = [self.link(proc), activity] if boot else [self.script(proc), f"one{activity}"]
        result = self.runner(argv)
        if result.output:
            print(result.output, end="" if result.output.endswith("\n") else "\n")
        return result.returncode
