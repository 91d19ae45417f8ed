"""``Process.restart``, ``restart_delay``, ``restart_max`` and ``stop_timeout``: what
each backend writes, what validation and each backend refuse (located at the
model's line), and the sysvinit supervising loop run for real. The effect on
real managers is tested in ``tests/e2e/test_restart_policy.py``.
"""

from __future__ import annotations

import dataclasses
import os
import plistlib
import subprocess
import time
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends.sysvinit.script import SUPERVISE_SH
from procmgmt.deploy.build import evaluate, render
from procmgmt.errors import ValidationError
from tests.conftest import golden_settings

MODEL = """\
from procmgmt import Process

def processes(settings):
    return {
        "plain": Process(name="plain", foreground_process="/bin/sleep",
                         foreground_process_args=["100"]),
        "never": Process(name="never", foreground_process="/bin/sleep",
                         foreground_process_args=["100"], restart="no", stop_timeout=30),
        "failing": Process(name="failing", foreground_process="/bin/sleep",
                           foreground_process_args=["100"], restart="on-failure",
                           restart_delay=2.5, restart_max=4, stop_timeout=2.5),
        "forever": Process(name="forever", foreground_process="/bin/sleep",
                           foreground_process_args=["100"], restart="always"),
    }
"""


def rendered(tmp_path: Path, backend: str, model: str = MODEL) -> tuple[dict[str, str],
                                                                         list[str]]:
    """name/path -> content of everything ``backend`` generates for ``model``, and warnings."""
    model_file = tmp_path / "processes.py"
    model_file.write_text(model)
    settings = dataclasses.replace(golden_settings(False, backend))
    model_obj, specs = evaluate(str(model_file), settings)
    result = render(model_obj, specs, settings, get_backend(backend))
    files = {f"{r.spec.name}/{f.path}": f.content or "" for r in result.processes
             for f in r.files}
    return files, list(result.warnings)


def refused(tmp_path: Path, backend: str, model: str) -> list[str]:
    """The problems ``backend`` reports for ``model``, as "field: message" lines."""
    with pytest.raises(ValidationError) as err:
        rendered(tmp_path, backend, model)
    return [f"{p.field}: {p.message}" for p in err.value.problems]


def only(files: dict[str, str], name: str, suffix: str = "") -> str:
    found = [text for path, text in files.items()
             if path.startswith(f"{name}/") and path.endswith(suffix)]
    assert len(found) == 1, sorted(files)
    return found[0]


def one(restart: str, **more: object) -> str:
    extra = "".join(f", {k}={v!r}" for k, v in more.items())
    return ("from procmgmt import Process\n\ndef processes(settings):\n"
            "    return {'p': Process(name='p', foreground_process='/bin/sleep', "
            f"foreground_process_args=['9'], restart={restart!r}{extra})}}\n")


def test_systemd(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "systemd")
    plain = only(files, "plain", ".service")
    assert "Restart=" not in plain and "TimeoutStopSec" not in plain
    assert "Restart=no\n" in only(files, "never", ".service")
    assert "TimeoutStopSec=30\n" in only(files, "never", ".service")
    failing = only(files, "failing", ".service")
    for line in ("Restart=on-failure", "RestartSec=2.5", "StartLimitIntervalSec=60",
                 "StartLimitBurst=5", "TimeoutStopSec=2.5"):
        assert f"{line}\n" in failing
    assert "Restart=always\n" in only(files, "forever", ".service")


def test_supervisord(tmp_path: Path) -> None:
    model = MODEL.replace("restart_delay=2.5, ", "")
    files, warnings = rendered(tmp_path, "supervisord", model)
    plain = only(files, "plain", ".conf")
    assert "autorestart=unexpected\n" in plain and "stopwaitsecs=10\n" in plain
    assert "startretries=3\n" in plain
    assert "autorestart=false\n" in only(files, "never", ".conf")
    assert "stopwaitsecs=30\n" in only(files, "never", ".conf")
    failing = only(files, "failing", ".conf")
    assert "startretries=4\n" in failing and "stopwaitsecs=3\n" in failing
    assert "autorestart=true\n" in only(files, "forever", ".conf")
    assert any("failing" in w and "startretries" in w for w in warnings)
    assert refused(tmp_path, "supervisord", one("always", restart_delay=1)) == [
        "restart_delay: supervisord: cannot carry restart_delay: leave it unset, or see "
        "which backends can in docs/backends.md (restart and stop)"]


def test_launchd(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "launchd", MODEL.replace("restart_max=4, ", ""))
    def job(name: str) -> dict[str, object]:
        return plistlib.loads(only(files, name, ".plist").encode())
    assert job("plain")["KeepAlive"] == {"SuccessfulExit": False}
    assert "ExitTimeOut" not in job("plain")
    assert job("never")["KeepAlive"] is False and job("never")["ExitTimeOut"] == 30
    assert job("failing")["ThrottleInterval"] == 3 and job("failing")["ExitTimeOut"] == 3
    assert job("forever")["KeepAlive"] is True
    assert refused(tmp_path, "launchd", one("always", restart_max=2))[0].startswith(
        "restart_max: launchd: cannot carry restart_max")


def test_s6_finish_script(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "s6")
    assert not any(p.endswith("/finish") for p in files if p.startswith(("plain/", "forever/")))
    assert only(files, "plain", "timeout-kill") == "10000\n"
    never = only(files, "never", "/finish")
    assert "procmgmt_finish_policy no \"$1\"\n" in never and "permafailon" not in never
    assert only(files, "never", "timeout-kill") == "30000\n"
    failing = only(files, "failing", "/finish")
    assert "procmgmt_finish_policy on-failure \"$1\"\n" in failing
    assert "s6-permafailon 60 5 1-255," in failing
    assert "procmgmt_finish_delay 2.5\n" in failing
    assert only(files, "failing", "timeout-finish") == "7500\n"
    assert only(files, "failing", "timeout-kill") == "2500\n"


@pytest.mark.parametrize("policy,status,restarted", [
    ("no", "0", False), ("no", "1", False), ("on-failure", "0", False),
    ("on-failure", "1", True), ("on-failure", "256", True)])
def test_s6_finish_exits_125_to_stop_restarts(tmp_path: Path, policy: str, status: str,
                                              restarted: bool) -> None:
    files, _ = rendered(tmp_path, "s6", one(policy))
    finish = tmp_path / "finish"
    finish.write_text(only(files, "p", "/finish"))
    result = subprocess.run(["sh", str(finish), status, "15"], cwd=tmp_path, check=False,
                            capture_output=True, text=True)
    assert result.returncode == (0 if restarted else 125), result.stderr


def test_sysvinit_script(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "sysvinit")
    plain = only(files, "plain", "init.d/plain")
    assert "procmgmt_supervisor" not in plain and "procmgmt_stop_timeout=10\n" in plain
    never = only(files, "never", "init.d/never")
    assert "procmgmt_supervisor" not in never and "procmgmt_stop_timeout=30\n" in never
    failing = only(files, "failing", "init.d/failing")
    assert "procmgmt_stop_timeout=3\n" in failing
    assert ('set -- /bin/sh -c "$procmgmt_supervisor" "$procmgmt_name" on-failure 3 4 60 '
            '"$procmgmt_stop_signal" "$procmgmt_pidfile.restarts" "$procmgmt_reload_signal" '
            '"$@"') in failing
    assert " always 1 '' 60 " in only(files, "forever", "init.d/forever")


def test_bsdrc_restarts_through_daemon(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "bsdrc", one("always", restart_delay=2))
    script = only(files, "p", "rc.d/p")
    # One word a line; the pid file holds daemon(8)'s pid (-P): rc.subr stops it.
    words = " \\\n\t    ".join(["-f", "-R", "2", "-P", "/srv/pm/run/p.pid"])
    assert words in script and "\ncommand=/usr/sbin/daemon\n" in script
    plain = only(rendered(tmp_path, "bsdrc", one("no"))[0], "p", "rc.d/p")
    assert "\t    -r \\" not in plain
    assert " \\\n\t    ".join(["-f", "-p", "/srv/pm/run/p.pid"]) in plain
    assert refused(tmp_path, "bsdrc", one("on-failure"))[0].startswith(
        "restart: bsdrc: cannot carry restart='on-failure' (it can: 'always', 'no'; "
        "without restart= it does 'no')")


@pytest.mark.parametrize("backend", ["cygrunsrv", "s6-rc"])
def test_refused_where_the_manager_cannot(tmp_path: Path, backend: str) -> None:
    problems = refused(tmp_path, backend, one("on-failure", restart_max=3))
    fields = sorted(p.split(":")[0] for p in problems)
    assert fields == ["restart", "restart_max"], problems


def test_runit_carries_on_failure_but_no_restart_limit(tmp_path: Path) -> None:
    """runit's generated ./finish carries "on-failure"; runsv keeps no count of
    restarts, so restart_max stays refused."""
    problems = refused(tmp_path, "runit", one("on-failure", restart_max=3))
    assert [p.split(":")[0] for p in problems] == ["restart_max"], problems


def test_runit_stop_timeout_reaches_the_activator(tmp_path: Path) -> None:
    model_file = tmp_path / "processes.py"
    model_file.write_text(MODEL.replace('restart="on-failure",', "").replace(
        "restart_delay=2.5, restart_max=4, ", "").replace('restart="always"', "").replace(
        'restart="no", ', ""))
    settings = golden_settings(False, "runit")
    model, specs = evaluate(str(model_file), settings)
    result = render(model, specs, settings, get_backend("runit"))
    extra = {r.spec.name: r.extra for r in result.processes}
    assert extra["never"]["stop_timeout"] == 30 and "stop_timeout" not in extra["plain"]


def test_sysvinit_refuses_what_its_loop_cannot_do(tmp_path: Path) -> None:
    daemon_only = ("from procmgmt import Process\n\ndef processes(settings):\n"
                   "    return {'d': Process(name='d', daemon='/usr/sbin/food', "
                   "foreground_process=None, restart='always')}\n")
    assert refused(tmp_path, "sysvinit", daemon_only)[0].startswith(
        "restart: sysvinit: the init script restarts only a foreground program")
    assert refused(tmp_path, "sysvinit", one("always", stop_signal="INT"))[0].startswith(
        "stop_signal: sysvinit: the init script's restart loop cannot notice SIGINT")


@pytest.mark.parametrize("kwargs,field", [
    ({"restart": "sometimes"}, "restart"),
    ({"restart_delay": 1}, "restart_delay"),
    ({"restart": "always", "restart_delay": -1}, "restart_delay"),
    ({"restart": "always", "restart_max": 0}, "restart_max"),
    ({"restart": "always", "restart_max": True}, "restart_max"),
    ({"stop_timeout": 0}, "stop_timeout"),
    ({"stop_timeout": "nan"}, "stop_timeout"),
])
def test_validation_locates_bad_values(tmp_path: Path, kwargs: dict[str, object],
                                       field: str) -> None:
    # "nan" stands for float("nan"), whose repr is not Python.
    args = ", ".join(f"{k}=float('nan')" if v == "nan" else f"{k}={v!r}"
                     for k, v in kwargs.items())
    model = ("from procmgmt import Process\n\ndef processes(settings):\n"
             "    return {'p': Process(name='p', foreground_process='/bin/sleep', "
             f"{args})}}\n")
    with pytest.raises(ValidationError) as err:
        rendered(tmp_path, "systemd", model)
    assert [(p.field, p.line) for p in err.value.problems] == [(field, 4)]


def test_supervising_loop_gives_up_after_restart_max(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    started = time.monotonic()
    result = subprocess.run(
        ["sh", "-c", SUPERVISE_SH, "crashy", "on-failure", "0", "2", "60", "TERM",
         str(tmp_path / "count"), "HUP", "sh", "-c", f'echo run >> {runs}; exit 3'],
        capture_output=True, text=True, timeout=30, check=False, umask=0)
    assert result.returncode == 3, result.stderr
    assert runs.read_text().count("run") == 3  # the first start and two restarts
    assert (tmp_path / "count").read_text() == "2\n", "the loop counts its restarts"
    assert (tmp_path / "count").stat().st_mode & 0o022 == 0, "umask 000 made it writable"
    assert "after 2 restarts within 60 s; not restarted again" in result.stderr
    assert time.monotonic() - started < 10


def test_supervising_loop_stops_without_restart(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    loop = subprocess.Popen(
        ["setsid", "sh", "-c", SUPERVISE_SH, "looping", "always", "0", "", "60", "TERM",
         "/nonexistent/count", "HUP", "sh", "-c", f'echo run >> {runs}; exec sleep 30'],
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not runs.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        os.killpg(loop.pid, 15)  # what procmgmt_stop does: the group gets the stop signal
        assert loop.wait(timeout=10) == 0
        assert runs.read_text().count("run") == 1
    finally:
        if loop.poll() is None:
            os.killpg(loop.pid, 9)
            loop.wait()


def test_supervising_loop_passes_the_reload_signal_on(tmp_path: Path) -> None:
    """The pid file names the loop, so reload signals it: the program gets the signal
    and keeps running, the loop too."""
    runs, reloads = tmp_path / "runs", tmp_path / "reloads"
    loop = subprocess.Popen(
        ["setsid", "sh", "-c", SUPERVISE_SH, "looping", "always", "0", "", "60", "TERM",
         "/nonexistent/count", "USR1", "sh", "-c",
         f"trap 'echo reloaded >> {reloads}' USR1; echo run >> {runs}; "
         "while :; do sleep 0.1; done"],
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not runs.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(loop.pid, 10)  # SIGUSR1, to the loop only
        while not reloads.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reloads.exists(), "the program did not get the reload signal"
        time.sleep(0.3)
        assert loop.poll() is None and runs.read_text().count("run") == 1
    finally:
        os.killpg(loop.pid, 9)
        loop.wait()
