"""The sysvinit backend: generated init scripts, their links, and real runs.

The scripts are self-contained POSIX sh, so the real-run tests execute them
directly (no init system) under both ``sh`` and ``dash``, against the
webapps example on high free ports, and stop everything they start by PID.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends._activation import pid_alive
from procmgmt.backends.base import BuildContext, File
from procmgmt.backends.sysvinit import SysVInitActivator, SysVInitBackend
from procmgmt.deploy.build import build, evaluate, render
from procmgmt.errors import DeployError
from procmgmt.manifest import DeployedProcess, Generation
from procmgmt.model.spec import ProcessSpec
from procmgmt.settings import Settings, resolve
from tests import _lanes
from tests.conftest import EXAMPLES, golden_settings
from tests.golden.test_golden import CASES, rendered_tree

WEBAPPS = EXAMPLES / "webapps"
SIMPLE = WEBAPPS / "processes.py"
ADVANCED = WEBAPPS / "processes-advanced.py"
SHELLS = [s for s in ("sh", "dash") if _lanes.tool_path(s)]


# --------------------------------------------------------------------------- helpers

def _render(model_path: Path, privileged: bool = False,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """name -> (files by path, manifest extra) for a model, with golden settings."""
    settings = dataclasses.replace(golden_settings(privileged, "sysvinit"),
                                   extra_params=extra or {})
    model, specs = evaluate(str(model_path), settings)
    result = render(model, specs, settings, get_backend("sysvinit"))
    return {r.spec.name: ({f.path: f for f in r.files}, r.extra) for r in result.processes}


def _spec(**kwargs: Any) -> ProcessSpec:
    base: dict[str, Any] = {"name": "svc", "description": "A service",
                            "foreground": "/bin/sleep", "foreground_args": ("1000",)}
    base.update(kwargs)
    return ProcessSpec(**base)


def _ctx(spec: ProcessSpec, settings: Settings | None = None) -> BuildContext:
    return BuildContext(settings=settings or golden_settings(False), specs={spec.name: spec})


def _script_text(files: list[File], name: str = "svc") -> str:
    script = {f.path: f for f in files}[f"etc/rc.d/init.d/{name}"]
    assert script.content is not None
    return script.content


def _free_port_base(count: int) -> int:
    """A base port such that base..base+count-1 are all free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range found")


def _http_get(port: int, timeout: float = 5.0) -> str:
    """GET / on 127.0.0.1:port, retrying until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                return str(resp.read().decode())
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _read_pid(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Reaper:
    """Remembers every pid (file) a test starts and kills leftovers by PID."""

    def __init__(self) -> None:
        self.pid_files: list[str] = []
        self.pids: set[int] = set()

    def watch(self, pid_file: str) -> None:
        """Kill whatever ``pid_file`` names at teardown."""
        self.pid_files.append(pid_file)

    def note(self, pid: int | None) -> None:
        """Remember a pid seen while the test ran."""
        if pid:
            self.pids.add(pid)

    def cleanup(self) -> list[int]:
        """SIGKILL every remembered process still alive; the pids that were."""
        for path in self.pid_files:
            self.note(_read_pid(path))
        leftovers = [pid for pid in sorted(self.pids) if pid_alive(pid)]
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in leftovers:
            _wait_gone(pid)
        return leftovers


@pytest.fixture
def reaper() -> Iterator[Reaper]:
    """Processes a test starts; leftovers are killed by PID and fail the test."""
    r = Reaper()
    try:
        yield r
    finally:
        leftovers = r.cleanup()
    assert not leftovers, f"processes left running (killed now): {leftovers}"


def _settings(tmp_path: Path, port_base: int, **extra: Any) -> Settings:
    """Unprivileged settings under tmp_path, with the state dirs created."""
    settings = resolve({
        "state_dir": str(tmp_path / "state"),
        "force_disable_user_change": True,
        "process_manager": "sysvinit",
        "extra_params": json.dumps({"port_base": port_base, **extra}),
    }, environ={})
    for d in (settings.runtime_dir, settings.log_dir, settings.tmp_dir):
        os.makedirs(d, exist_ok=True)
    return settings


def _build(tmp_path: Path, model: Path, port_base: int, **extra: Any) -> tuple[Settings,
                                                                              Generation]:
    settings = _settings(tmp_path, port_base, **extra)
    m, specs = evaluate(str(model), settings)
    return settings, build(m, specs, settings)


def _script(proc: DeployedProcess) -> str:
    return os.path.join(proc.path, str(proc.extra["script"]))


def _run(shell: str, script: str, activity: str,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shell, script, activity], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)


# --------------------------------------------------------------------------- units

def test_sequence_numbers_and_links_advanced() -> None:
    """Start sequence = dependency depth, kill sequence mirrored (99 - start)."""
    rendered = _render(ADVANCED)
    expected = {"webapp1": 0, "webapp2": 1, "webapp3": 1, "webapp4": 2,
                "webapp5": 0, "webapp6": 1}
    assert sorted(rendered) == sorted(expected)
    for name, seq in expected.items():
        files, extra = rendered[name]
        links = {p: f.symlink for p, f in files.items() if f.symlink is not None}
        want = {f"etc/rc.d/rc{lv}.d/S{seq:02d}{name}" for lv in (2, 3, 4, 5)}
        want |= {f"etc/rc.d/rc{lv}.d/K{99 - seq:02d}{name}" for lv in (0, 1, 6)}
        assert set(links) == want
        assert set(links.values()) == {f"../init.d/{name}"}
        script = files[f"etc/rc.d/init.d/{name}"]
        assert script.mode == 0o755
        assert extra["script"] == f"etc/rc.d/init.d/{name}"
        assert extra["sequence"] == seq
    assert "etc/rc.d/rc3.d/S00webapp1" in rendered["webapp1"][0]
    assert "etc/rc.d/rc0.d/K97webapp4" in rendered["webapp4"][0]


def test_lsb_header_should_start() -> None:
    """Should-Start/Should-Stop name the dependencies; default runlevels 2345/016."""
    rendered = _render(ADVANCED)
    text = rendered["webapp4"][0]["etc/rc.d/init.d/webapp4"].content or ""
    assert text.startswith("#!/bin/sh\n### BEGIN INIT INFO\n")
    assert "# Provides:          webapp4\n" in text
    assert "# Should-Start:      webapp2 webapp3\n" in text
    assert "# Should-Stop:       webapp2 webapp3\n" in text
    assert "# Default-Start:     2 3 4 5\n" in text
    assert "# Default-Stop:      0 1 6\n" in text
    assert "# Short-Description: Test webapp webapp4\n" in text
    assert "### END INIT INFO\n" in text
    text1 = rendered["webapp1"][0]["etc/rc.d/init.d/webapp1"].content or ""
    assert "# Should-Start:\n" in text1


@pytest.mark.parametrize(("mode", "expected_mode"), [
    (None, "daemon"), ("daemon", "daemon"), ("foreground", "foreground")])
def test_mode_selection(mode: str | None, expected_mode: str) -> None:
    """auto -> daemon with -D; daemon-only -> daemon; foreground-only -> our daemonizer."""
    settings = dataclasses.replace(golden_settings(False),
                                   extra_params={"webapp_mode": mode} if mode else {})
    _, specs = evaluate(str(SIMPLE), settings)
    spec = next(s for s in specs if s.name == "webapp")
    native = SysVInitBackend().translate(spec, _ctx(spec, settings))
    assert native["mode"] == expected_mode
    assert native["command"][0] == sys.executable
    text = _script_text(SysVInitBackend().render(native, spec, _ctx(spec, settings)), "webapp")
    if expected_mode == "daemon":
        assert native["command"][-1] == "-D"
        assert "set -- setsid" not in text
        assert "procmgmt_start_timeout=10" in text
    else:
        assert native["command"][-1].endswith("webapp.py")
        assert 'set -- setsid "$@"' in text
        assert "procmgmt_logfile=/srv/pm/log/webapp.log" in text


def test_user_switch_only_when_privileged() -> None:
    """force_disable_user_change strips the user; privileged builds switch to it."""
    unpriv = _render(ADVANCED, privileged=False)["webapp1"][0]["etc/rc.d/init.d/webapp1"]
    priv = _render(ADVANCED, privileged=True)["webapp1"][0]["etc/rc.d/init.d/webapp1"]
    assert "setpriv" not in (unpriv.content or "")
    assert "su -s" not in (unpriv.content or "")
    assert "--reuid=webapp1" in (priv.content or "")
    assert "su -s /bin/sh -c 'exec \"$0\" \"$@\"' webapp1 --" in (priv.content or "")
    # The pid file stays in its own directory either way (paths independent of privilege).
    assert "procmgmt_pidfile=/srv/pm/run/procmgmt-pid/webapp1/webapp1.pid" \
        in (unpriv.content or "")
    spec = _spec(user="alice")
    assert SysVInitBackend().translate(spec, _ctx(spec))["user"] is None
    assert SysVInitBackend().translate(
        spec, _ctx(spec, golden_settings(True)))["user"] == "alice"


def test_override_dict_replaces_activity_and_runlevels() -> None:
    """A dict override deep-merges: replace an activity, add one, change runlevels."""
    spec = _spec(overrides={"sysvinit": {
        "activities": {"reload": "echo custom reload", "rotate": 'echo "rotating"'},
        "remove_activities": ["restart"],
        "runlevels": [3, 5],
    }})
    files, extra = SysVInitBackend().render_process(spec, _ctx(spec))
    text = _script_text(files)
    links = sorted(f.path for f in files if f.symlink)
    assert links == ["etc/rc.d/rc0.d/K99svc", "etc/rc.d/rc1.d/K99svc", "etc/rc.d/rc2.d/K99svc",
                     "etc/rc.d/rc3.d/S00svc", "etc/rc.d/rc4.d/K99svc", "etc/rc.d/rc5.d/S00svc",
                     "etc/rc.d/rc6.d/K99svc"]
    assert "# Default-Start:     3 5\n" in text
    assert "# Default-Stop:      0 1 2 4 6\n" in text
    assert "    reload)\n        echo custom reload\n" in text
    assert "    rotate)\n" in text
    assert "    restart)" not in text
    assert "{start|stop|reload|status|rotate}" in text
    # Standard ones are untouched by the merge.
    assert "    start)\n        procmgmt_start\n" in text
    assert extra["script"] == "etc/rc.d/init.d/svc"


def test_override_callable_and_stop_timeout() -> None:
    """A callable override gets the native dict and returns a new one."""
    def patch(native: dict[str, Any]) -> dict[str, Any]:
        native["stop_timeout"] = 3
        native["default_start"] = [2]
        native["description"] = "Patched"
        return native

    spec = _spec(overrides={"sysvinit": patch})
    files, extra = SysVInitBackend().render_process(spec, _ctx(spec))
    text = _script_text(files)
    assert "procmgmt_stop_timeout=3\n" in text
    assert "# Short-Description: Patched\n" in text
    assert [f.path for f in files if f.path.startswith("etc/rc.d/rc2.d/S")] \
        == ["etc/rc.d/rc2.d/S00svc"]
    assert not any("rc3.d/S" in f.path for f in files)
    assert extra["stop_timeout"] == 3


def test_bad_override_is_a_value_error() -> None:
    """Values the script cannot express fail rendering (build names the override)."""
    for bad in ({"sequence": 100}, {"activities": {"bad name": "true"}},
                {"mode": "sometimes"}, {"runlevels": ["x"]}, {"stop_timeout": 1.5}):
        spec = _spec(overrides={"sysvinit": bad})
        with pytest.raises(ValueError):
            SysVInitBackend().render_process(spec, _ctx(spec))


def test_validate_chain_too_deep() -> None:
    """Rank 100 cannot be a two-digit sequence number; rank 99 still can."""
    ok, deep = _spec(name="ok", rank=99), _spec(name="deep", rank=100)
    problems = SysVInitBackend().validate([ok, deep], _ctx(ok))
    assert [(p.instance, p.field) for p in problems] == [("deep", "dependencies")]
    assert "two digits" in problems[0].message


def test_script_contents_for_every_option() -> None:
    """umask, PATH prefix, environment, directory, nice, initialize appear in order."""
    spec = _spec(umask="0027", path=("/opt/tool",), directory="/var/empty dir", nice=5,
                 initialize="mkdir -p /tmp/x\ncat > /tmp/x/f <<EOF\n  keep indent\nEOF",
                 environment={"A": "it's"})
    text = _script_text(SysVInitBackend().render_process(spec, _ctx(spec))[0])
    assert "\numask 0027\n" in text
    assert 'PATH=/opt/tool:"${PATH:-' in text
    assert "A='it'\"'\"'s'; export A\n" in text
    assert "    cd '/var/empty dir' || return 1\n" in text
    assert '    set -- nice -n 5 "$@"\n' in text
    # Multi-line snippets are kept verbatim (here-documents must not be indented).
    assert "cat > /tmp/x/f <<EOF\n  keep indent\nEOF\n}" in text
    assert text.index("umask") < text.index("PATH=") < text.index("export A")


# --------------------------------------------------------------------------- linting

def _lint(paths: list[Path], checkbashisms: bool = True) -> None:
    """shellcheck -s sh, sh -n, dash -n (and checkbashisms --posix) accept every script,
    each content once per session (tests/_lanes.py)."""
    linters = [_lanes.SHELLCHECK, _lanes.SH_N, _lanes.DASH_N]
    if checkbashisms:
        linters.append(("checkbashisms", "--posix"))
    _lanes.assert_lints_clean([p.read_text(encoding="utf-8") for p in paths], *linters)


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_scripts_lint_clean(case: str, tmp_path: Path) -> None:
    """Every generated script passes shellcheck -s sh, sh -n, dash -n (and checkbashisms)."""
    tree = rendered_tree("sysvinit", case)
    scripts = [rel for rel in tree if "/etc/rc.d/init.d/" in rel]
    assert scripts
    paths = []
    for rel in scripts:
        path = tmp_path / rel.replace("/", "_")
        path.write_text(tree[rel], encoding="utf-8")
        paths.append(path)
    _lint(paths)


@pytest.mark.parametrize("newline", [False, True])
def test_script_with_every_option_lints_clean(newline: bool, tmp_path: Path) -> None:
    """User switch, nice, directory, umask, path, snippets: still clean POSIX sh.

    checkbashisms mis-parses a single-quoted value spanning lines ("Unterminated
    quoted string"), so it only checks the variant without a newline value;
    shellcheck, sh and dash check both.
    """
    spec = _spec(umask="0027", path=("/opt/tool",), directory="/srv", nice=5, user="alice",
                 initialize="mkdir -p /tmp/x\nchown alice /tmp/x",
                 environment={"A": "x y", "B": "$HOME `id` \\", "C": "ü'\"" + "\n" * newline},
                 overrides={"sysvinit": {"activities": {
                     "rotate": 'if procmgmt_running; then\n    kill -s USR1 "$procmgmt_pid"\nfi'
                 }}})
    files, _ = SysVInitBackend().render_process(spec, _ctx(spec, golden_settings(True)))
    path = tmp_path / "svc"
    path.write_text(_script_text(files), encoding="utf-8")
    _lint([path], checkbashisms=not newline)


# --------------------------------------------------------------------------- real runs

@pytest.mark.e2e
@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("mode", [None, "daemon", "foreground"])
def test_start_status_stop(shell: str, mode: str | None, tmp_path: Path,
                           reaper: Reaper) -> None:
    """start serves the page, status 0, start again is a no-op, stop, status 3, nothing left."""
    base = _free_port_base(2)
    extra = {"webapp_mode": mode} if mode else {}
    settings, gen = _build(tmp_path, SIMPLE, base, **extra)
    proc = gen.by_name()["webapp"]
    assert proc.pid_file
    reaper.watch(proc.pid_file)
    script = _script(proc)

    r = _run(shell, script, "start")
    assert r.returncode == 0, r.stdout + r.stderr
    pid = _read_pid(proc.pid_file)
    reaper.note(pid)
    assert pid and pid_alive(pid)
    assert f"listening on port: {base}" in _http_get(base)

    r = _run(shell, script, "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"webapp is running (pid {pid})" in r.stdout

    again = _run(shell, script, "start")
    assert again.returncode == 0 and "already running" in again.stdout
    assert _read_pid(proc.pid_file) == pid

    if mode == "foreground":
        # The daemonizer put the process in its own session and its output in the log.
        assert os.getsid(pid) == pid
        log = Path(settings.log_dir) / "webapp.log"
        assert "GET / HTTP" in log.read_text()

    r = _run(shell, script, "stop")
    assert r.returncode == 0, r.stdout + r.stderr
    assert _wait_gone(pid)
    r = _run(shell, script, "status")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "not running" in r.stdout
    assert _port_closed(base)
    assert not os.path.exists(proc.pid_file)
    # Stopping what is not running succeeds.
    assert _run(shell, script, "stop").returncode == 0


@pytest.mark.e2e
@pytest.mark.parametrize("shell", SHELLS)
def test_environment_reaches_process_exactly(shell: str, tmp_path: Path,
                                             reaper: Reaper) -> None:
    """Spaces, quotes, $, backticks, backslashes, newlines, non-ASCII arrive unchanged."""
    env = {"SPACES": "a  b ", "SQ": "it's 'quoted'", "DQ": 'say "hi"', "DOLLAR": "$HOME ${X}",
           "BT": "`id` $(id)", "BS": "back\\slash\\n", "NL": "line1\nline2\n",
           "UTF": "ünïcødé ✓ 日本", "EMPTY": "", "GLOB": "* ?", "DASH": "-n"}
    out = tmp_path / "env.json"
    code = ("import json, os, sys, time\n"
            f"keys = {sorted(env)!r}\n"
            "with open(sys.argv[1], 'w', encoding='utf-8') as f:\n"
            "    json.dump({k: os.environ.get(k) for k in keys}, f)\n"
            "time.sleep(600)\n")
    settings = _settings(tmp_path, 0)
    spec = _spec(name="envdump", foreground=sys.executable,
                 foreground_args=("-c", code, str(out)), environment=env)
    files, extra = SysVInitBackend().render_process(spec, _ctx(spec, settings))
    script = tmp_path / "envdump"
    script.write_text(_script_text(files, "envdump"), encoding="utf-8")
    pid_file = str(extra["pid_file"])
    reaper.watch(pid_file)
    r = _run(shell, str(script), "start")
    assert r.returncode == 0, r.stdout + r.stderr
    reaper.note(_read_pid(pid_file))
    deadline = time.monotonic() + 10
    while not out.exists() or not out.read_text():
        assert time.monotonic() < deadline, "the process never wrote its environment"
        time.sleep(0.05)
    time.sleep(0.1)
    assert json.loads(out.read_text(encoding="utf-8")) == env
    assert _run(shell, str(script), "stop").returncode == 0


@pytest.mark.e2e
@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("mode", ["daemon", "foreground"])
def test_start_fails_when_port_taken(shell: str, mode: str, tmp_path: Path,
                                     reaper: Reaper) -> None:
    """A process that cannot bind its port makes start exit non-zero with a message."""
    base = _free_port_base(2)
    _, gen = _build(tmp_path, SIMPLE, base, webapp_mode=mode)
    proc = gen.by_name()["webapp"]
    assert proc.pid_file
    reaper.watch(proc.pid_file)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base))
        blocker.listen()
        r = _run(shell, _script(proc), "start")
    reaper.note(_read_pid(proc.pid_file))
    assert r.returncode != 0
    if mode == "daemon":
        assert "the daemon failed to start (exit status 1)" in r.stderr
        assert "Address already in use" in r.stderr  # the daemon's own message
    else:
        assert "exited right after starting" in r.stderr
        assert "Address already in use" in r.stderr  # tail of the log file
    assert _run(shell, _script(proc), "status").returncode == 3


@pytest.mark.e2e
@pytest.mark.parametrize("shell", SHELLS)
def test_sigterm_ignored_is_killed_after_timeout(shell: str, tmp_path: Path,
                                                 reaper: Reaper) -> None:
    """stop sends SIGKILL once stop_timeout (overridden to 1 s) has passed."""
    settings = _settings(tmp_path, 0)
    code = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "print('ready', flush=True)\ntime.sleep(600)\n")
    spec = _spec(name="stubborn", foreground=sys.executable, foreground_args=("-c", code),
                 overrides={"sysvinit": {"stop_timeout": 1}})
    files, extra = SysVInitBackend().render_process(spec, _ctx(spec, settings))
    script = tmp_path / "stubborn"
    script.write_text(_script_text(files, "stubborn"), encoding="utf-8")
    pid_file = str(extra["pid_file"])
    reaper.watch(pid_file)
    assert _run(shell, str(script), "start").returncode == 0
    pid = _read_pid(pid_file)
    reaper.note(pid)
    assert pid
    log = Path(settings.log_dir) / "stubborn.log"
    deadline = time.monotonic() + 10
    while "ready" not in log.read_text():  # SIGTERM is ignored from here on
        assert time.monotonic() < deadline
        time.sleep(0.05)
    began = time.monotonic()
    r = _run(shell, str(script), "stop")
    took = time.monotonic() - began
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sending SIGKILL" in r.stderr
    assert 1.0 <= took < 8
    assert _wait_gone(pid)
    assert not os.path.exists(pid_file)


@pytest.mark.e2e
def test_stale_pid_file_is_not_running(tmp_path: Path, reaper: Reaper) -> None:
    """A pid file naming a dead process: status 3, and start replaces it."""
    base = _free_port_base(2)
    _, gen = _build(tmp_path, SIMPLE, base, webapp_mode="foreground")
    proc = gen.by_name()["webapp"]
    assert proc.pid_file
    reaper.watch(proc.pid_file)
    dead = subprocess.Popen(["true"])
    dead.wait()
    Path(proc.pid_file).parent.mkdir(parents=True, exist_ok=True)
    Path(proc.pid_file).write_text(f"{dead.pid}\n")
    assert _run("sh", _script(proc), "status").returncode == 3
    assert _run("sh", _script(proc), "start").returncode == 0
    reaper.note(_read_pid(proc.pid_file))
    assert _read_pid(proc.pid_file) != dead.pid
    assert _run("sh", _script(proc), "stop").returncode == 0


# --------------------------------------------------------------------------- activator

@pytest.mark.e2e
def test_activator_start_status_activity_stop(tmp_path: Path, reaper: Reaper) -> None:
    """The activator runs the scripts; status reads the pid file without forking."""
    base = _free_port_base(7)
    settings, gen = _build(tmp_path, ADVANCED, base)
    activator = get_backend("sysvinit").activator(settings)
    assert isinstance(activator, SysVInitActivator)
    procs = gen.processes
    for p in procs:
        assert p.pid_file
        reaper.watch(p.pid_file)
    try:
        for p in sorted(procs, key=lambda p: (p.rank, p.name)):
            activator.start(gen, p)
            st = activator.status(gen, p)
            reaper.note(st.pid)
            assert st.running and st.pid
        for i in range(1, 7):
            assert f"listening on port: {base + i}" in _http_get(base + i)
        webapp1 = gen.by_name()["webapp1"]
        assert activator.activity(gen, webapp1, "status") == 0
    finally:
        for p in sorted(procs, key=lambda p: (p.rank, p.name), reverse=True):
            activator.stop_and_wait(gen, p)
    for p in procs:
        st = activator.status(gen, p)
        assert not st.running, st
    assert activator.activity(gen, gen.by_name()["webapp1"], "status") == 3
    assert activator.activity(gen, gen.by_name()["webapp1"], "nonsense") == 1


@pytest.mark.e2e
def test_activator_start_failure_raises(tmp_path: Path, reaper: Reaper) -> None:
    """A failing start is a DeployError naming the process, the status and the output."""
    base = _free_port_base(2)
    settings, gen = _build(tmp_path, SIMPLE, base, webapp_mode="daemon")
    proc = gen.by_name()["webapp"]
    assert proc.pid_file
    reaper.watch(proc.pid_file)
    activator = SysVInitActivator(settings)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", base))
        blocker.listen()
        with pytest.raises(DeployError) as info:
            activator.start(gen, proc)
    message = str(info.value)
    assert message.startswith("webapp: ")
    assert "exit status 1" in message
    assert "Address already in use" in message
    assert not activator.status(gen, proc).running


# --------------------------------------------------------------------------- user switching

def _status_ids(pid: int) -> tuple[int, int]:
    """(real uid, real gid) of a process, from /proc."""
    uid = gid = -1
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            uid = int(line.split()[1])
        elif line.startswith("Gid:"):
            gid = int(line.split()[1])
    return uid, gid


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.root("switches users")
@pytest.mark.e2e
@pytest.mark.parametrize("switcher", ["setpriv", "su"])
def test_user_switch_as_root(switcher: str, tmp_path: Path, reaper: Reaper) -> None:
    """initialize runs as root, the process as the user, with the environment kept.

    The ``su`` variant hides setpriv by running the script with a PATH of
    just the tools it needs, which exercises the fallback.
    """
    try:
        import pwd

        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user")
    os.chmod(tmp_path, 0o755)
    settings = resolve({"state_dir": str(tmp_path / "state"), "process_manager": "sysvinit"},
                       environ={})
    assert settings.privileged
    for d in (settings.runtime_dir, settings.log_dir, settings.tmp_dir):
        os.makedirs(d, mode=0o755, exist_ok=True)
    marker = tmp_path / "initialized-by"
    spec = _spec(name="asuser", user="nobody", foreground="/bin/sleep",
                 foreground_args=("600",), environment={"PM_CHECK": "kept it's"},
                 initialize=f"id -u > {marker}")
    files, extra = SysVInitBackend().render_process(spec, _ctx(spec, settings))
    script = tmp_path / "asuser"
    script.write_text(_script_text(files, "asuser"), encoding="utf-8")
    pid_file = str(extra["pid_file"])
    assert pid_file.startswith(settings.pid_parent_dir)
    reaper.watch(pid_file)
    env = dict(os.environ)
    if switcher == "su":
        tools = tmp_path / "bin"
        tools.mkdir()
        for tool in ("sleep", "rm", "cat", "ps", "tr", "tail", "setsid", "id", "su",
                     "mkdir", "chmod", "chown"):
            found = shutil.which(tool)
            assert found, tool
            (tools / tool).symlink_to(found)
        env["PATH"] = str(tools)
    dash = shutil.which("dash") or "dash"
    r = subprocess.run([dash, str(script), "start"], env=env, capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    pid = _read_pid(pid_file)
    assert pid
    reaper.note(pid)
    target = pid
    try:
        assert marker.read_text().strip() == "0"
        if switcher == "su":
            # su forks: the pid leads the group, the program is its child.
            deadline = time.monotonic() + 5
            while not (kids := _children(pid)):
                assert time.monotonic() < deadline, "su started no child"
                time.sleep(0.05)
            target = kids[0]
            reaper.note(target)
        assert _status_ids(target) == (nobody.pw_uid, nobody.pw_gid)
        environ = Path(f"/proc/{target}/environ").read_bytes().split(b"\0")
        assert b"PM_CHECK=kept it's" in environ
        status = subprocess.run([dash, str(script), "status"], env=env, capture_output=True,
                                text=True, timeout=60, check=False)
        assert status.returncode == 0, status.stdout + status.stderr
    finally:
        r = subprocess.run([dash, str(script), "stop"], env=env, capture_output=True,
                           text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _wait_gone(pid) and _wait_gone(target)


@pytest.mark.e2e
@pytest.mark.parametrize("mode", ["daemon", "foreground"])
def test_generated_scripts_start_on_a_fresh_state_dir(mode: str, tmp_path: Path) -> None:
    """``procmgmt generate -P sysvinit``, then the script's ``start`` with nothing of the
    state dir existing yet: start creates the pid file's and the log file's
    directories (0755), the webapp answers, stop stops it."""
    from tests.e2e.util import free_port_block, wait_http

    state = tmp_path / "state"
    out = tmp_path / "out"
    base = free_port_block(2)
    gen = subprocess.run(
        [sys.executable, "-m", "procmgmt", "generate", "-P", "sysvinit", "-o", str(out),
         "--state-dir", str(state), "--force-disable-user-change", "--extra-params",
         json.dumps({"port_base": base, "webapp_mode": mode}), str(SIMPLE)],
        capture_output=True, text=True, timeout=60, check=False)
    assert gen.returncode == 0, gen.stderr
    assert not state.exists()
    script = out / "etc" / "rc.d" / "init.d" / "webapp"
    pid = None
    try:
        start = subprocess.run([str(script), "start"], capture_output=True, text=True,
                               timeout=60, check=False)
        assert start.returncode == 0, start.stdout + start.stderr
        piddir = state / "run" / "procmgmt-pid" / "webapp"
        pid = int((piddir / "webapp.pid").read_text())
        assert "Simple test webapp" in wait_http(base)
        made = [piddir.parent, piddir] + ([state / "log"] if mode == "foreground" else [])
        for d in made:
            assert d.stat().st_mode & 0o7777 == 0o755, oct(d.stat().st_mode)
        stop = subprocess.run([str(script), "stop"], capture_output=True, text=True,
                              timeout=60, check=False)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not pid_alive(pid)
    finally:
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_pid_file_in_the_shared_tmp_dir_gets_a_sticky_dir(tmp_path: Path) -> None:
    """Privileged, a pid file a model puts in the private tmp dir (which service users
    share): the script creates a missing tmp dir 1777, as init-state does; a pid file
    in the process's own pid directory is procmgmt_make_piddir's (owned by its user)."""
    model_file = tmp_path / "model.py"
    model_file.write_text(
        "from procmgmt import Process\n"
        "def processes(settings):\n"
        "    return {'tmpd': Process(name='tmpd', daemon='/bin/true',\n"
        "                            pid_file=settings.tmp_dir + '/tmpd.pid'),\n"
        "            'own': Process(name='own', daemon='/bin/true',\n"
        "                           pid_file=settings.pid_file('own'))}\n")
    settings = dataclasses.replace(golden_settings(True), tmp_dir=str(tmp_path / "tmp"))
    model, specs = evaluate(str(model_file), settings)
    result = render(model, specs, settings, get_backend("sysvinit"))
    scripts = {r.spec.name: f.content or "" for r in result.processes for f in r.files
               if f.path == f"etc/rc.d/init.d/{r.spec.name}"}
    assert f"mkdir -p {tmp_path}/tmp && chmod 1777 {tmp_path}/tmp)" in scripts["tmpd"]
    own = os.path.dirname(settings.pid_file("own"))
    assert f"procmgmt_piddir={own}\n" in scripts["own"]
    assert f"mkdir -p {own} &&" not in scripts["own"]


def test_log_rotation_writes_through_the_rotating_writer() -> None:
    """With --log-max-bytes a foreground process's output goes through the writer
    (its limits set in the script); without, it is appended as before."""
    spec = ProcessSpec(name="svc", description="A service", foreground="/bin/sleep",
                       foreground_args=("1000",))
    settings = dataclasses.replace(golden_settings(False, "sysvinit"),
                                   log_max_bytes=1024, log_backups=3)

    def script(s: Settings) -> str:
        files, _ = SysVInitBackend().render_process(
            spec, BuildContext(settings=s, specs={spec.name: spec}))
        return next(f.content or "" for f in files if f.path.endswith("init.d/svc"))

    rotated = script(settings)
    assert "procmgmt_log_max_bytes=1024\nprocmgmt_log_backups=3\n" in rotated
    assert 'procmgmt_spawn_rotating "$@" || return 1' in rotated
    assert "procmgmt_log_writer()" in rotated
    _lanes.assert_lints_clean([rotated], _lanes.SHELLCHECK, _lanes.DASH_N)
    plain = script(golden_settings(False, "sysvinit"))
    assert "procmgmt_log_writer" not in plain and "procmgmt_log_max_bytes" not in plain
    assert '"$@" </dev/null >>"$procmgmt_logfile" 2>&1 &' in plain


def test_engine_start_puts_the_markers_in_the_scripts_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pid file names the script's forked child before it execs the program, and
    /proc/PID/environ shows the environment of the last exec: only markers already
    in the script's own environment make a pid check in that window find them."""
    from procmgmt.backends.sysvinit import activator as mod
    from procmgmt.manifest import DeployedProcess, Generation
    from procmgmt.settings import resolve
    from procmgmt.validate import deployment_id

    seen: list[dict[str, str]] = []

    def runner(argv: Any, env: Any = None, timeout: float = 0) -> Any:
        seen.append(dict(env or {}))
        return mod.CommandResult(0, "")

    monkeypatch.setattr(mod, "subprocess_runner", runner)
    settings = resolve({"state_dir": str(tmp_path / "s")})
    proc = DeployedProcess(name="web", hash="h", path=str(tmp_path), rank=0, dependencies=())
    mod.SysVInitActivator(settings).start(Generation(backend="sysvinit", path="",
                                                     processes=(proc,)), proc)
    assert seen and seen[0]["PROCMGMT_DEPLOYMENT"] == deployment_id(settings)
    assert seen[0]["PROCMGMT_PROCESS"] == "web" and seen[0]["PROCMGMT_START_GRACE"] == "0"
