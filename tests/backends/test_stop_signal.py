"""``Process.stop_signal``: every backend sends it, the proxy translates SIGTERM to it,
bad names are refused, and every catalogue service chooses its own deliberately.

PostgreSQL's smart shutdown (SIGTERM) waits for idle clients; its fast
shutdown is SIGINT. The real effect is tested in
``tests/services/test_catalogue.py``; here each backend's output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from procmgmt.backends import get_backend
from procmgmt.backends.shared.proxy import ProxyOptions, generate
from procmgmt.deploy.build import evaluate, render
from procmgmt.errors import ValidationError
from tests.conftest import golden_settings

MODEL = """\
from procmgmt import Instance, Process

def processes(settings):
    return {
        "fg": Instance(Process(name="fg", foreground_process="/bin/sleep",
                               foreground_process_args=["100"], stop_signal="SIGINT")),
        "dm": Instance(Process(name="dm", daemon="/usr/sbin/food", daemon_args=["-d"],
                               pid_file="/srv/pm/run/dm.pid", foreground_process=None,
                               stop_signal="quit")),
        "plain": Instance(Process(name="plain", process="/bin/sleep", args=["100"])),
    }
"""


def rendered(tmp_path: Path, backend: str) -> tuple[dict[str, str], list[str]]:
    """name/path -> content of everything ``backend`` generates for MODEL, and warnings."""
    model_file = tmp_path / "processes.py"
    model_file.write_text(MODEL)
    settings = dataclasses.replace(golden_settings(False, backend))
    model, specs = evaluate(str(model_file), settings)
    result = render(model, specs, settings, get_backend(backend))
    files = {f"{r.spec.name}/{f.path}": f.content or "" for r in result.processes
             for f in r.files}
    return files, list(result.warnings)


def only(files: dict[str, str], name: str, suffix: str = "") -> str:
    """The one file of process ``name`` (ending in ``suffix``)."""
    found = [text for path, text in files.items()
             if path.startswith(f"{name}/") and path.endswith(suffix)]
    assert len(found) == 1, sorted(files)
    return found[0]


def test_sysvinit_script_sends_it(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "sysvinit")
    assert "procmgmt_stop_signal=INT\n" in only(files, "fg", "init.d/fg")
    assert "procmgmt_stop_signal=QUIT\n" in only(files, "dm", "init.d/dm")
    plain = only(files, "plain", "init.d/plain")
    assert "procmgmt_stop_signal=TERM\n" in plain
    assert 'kill -s "$procmgmt_stop_signal" -- "$procmgmt_target"' in plain


def test_supervisord_stopsignal(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "supervisord")
    assert "stopsignal=INT\n" in only(files, "fg", ".conf")
    assert "stopsignal=QUIT\n" in only(files, "dm", ".conf")
    assert "stopsignal=TERM\n" in only(files, "plain", ".conf")
    # The daemon runs behind the proxy: it traps QUIT and passes it on.
    proxy = only(files, "dm", "-proxy")
    assert "procmgmt_stop_signal=QUIT\n" in proxy
    assert "trap 'procmgmt_on_signal QUIT' QUIT" in proxy


def test_systemd_kill_signal(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "systemd")
    assert "KillSignal=SIGINT\n" in only(files, "fg", ".service")
    assert "KillSignal=SIGQUIT\n" in only(files, "dm", ".service")
    assert "KillSignal" not in only(files, "plain", ".service")


def test_bsdrc_sig_stop(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "bsdrc")
    assert "sig_stop=INT\n" in only(files, "fg", "rc.d/fg")
    assert "sig_stop=QUIT\n" in only(files, "dm", "rc.d/dm")
    assert "sig_stop" not in only(files, "plain", "rc.d/plain")


def test_cygrunsrv_termsig(tmp_path: Path) -> None:
    files, _ = rendered(tmp_path, "cygrunsrv")

    def params(name: str) -> list[str]:
        return list(json.loads(only(files, name, ".json"))["params"])

    fg = params("fg")
    assert fg[fg.index("--termsig") + 1] == "INT"
    assert "--termsig" not in params("plain")
    assert "procmgmt_stop_signal=QUIT" in only(files, "dm", "-proxy")


def test_launchd_warns_it_cannot(tmp_path: Path) -> None:
    files, warnings = rendered(tmp_path, "launchd")
    assert any("fg" in w and "SIGINT" in w for w in warnings), warnings
    # A wrapped daemon's proxy translates launchd's SIGTERM.
    assert "procmgmt_stop_signal=QUIT" in only(files, "dm")


def test_bad_stop_signal_is_refused(tmp_path: Path) -> None:
    model_file = tmp_path / "processes.py"
    model_file.write_text(textwrap.dedent("""\
        from procmgmt import Instance, Process

        def processes(settings):
            return {"a": Instance(Process(name="a", process="/bin/true", stop_signal="HUP")),
                    "b": Instance(Process(name="b", process="/bin/true", stop_signal=9))}
        """))
    with pytest.raises(ValidationError) as err:
        evaluate(str(model_file), golden_settings(False, "sysvinit"))
    text = str(err.value)
    assert "a.stop_signal: must be one of TERM, INT" in text and "'HUP'" in text
    assert "b.stop_signal" in text


def test_proxy_turns_term_into_the_stop_signal(tmp_path: Path) -> None:
    """A wrapped daemon that records the signals it gets: the proxy receives SIGTERM
    (as from launchd) and the daemon sees SIGINT, then the proxy exits."""
    pid_file = tmp_path / "d.pid"
    got = tmp_path / "got"
    daemon = tmp_path / "daemon.py"
    daemon.write_text(textwrap.dedent(f"""\
        import os, signal, sys, time
        if os.fork():
            sys.exit(0)
        os.setsid()
        def on(sig, frame):
            open({str(got)!r}, "a").write(signal.Signals(sig).name + "\\n")
            sys.exit(0)
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, on)
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        while True:
            time.sleep(1)
        """))
    script = tmp_path / "proxy"
    script.write_text(generate(ProxyOptions(name="d", command=(sys.executable, str(daemon)),
                                            wrap_daemon=True, pid_file=str(pid_file),
                                            stop_signal="INT")))
    script.chmod(0o755)
    proxy = subprocess.Popen([str(script)], start_new_session=True)
    daemon_pid = 0
    try:
        deadline = time.monotonic() + 10
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the daemon did not start"
            time.sleep(0.05)
        daemon_pid = int(pid_file.read_text())
        time.sleep(0.3)
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(10) == 0
        assert got.read_text() == "SIGINT\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proxy.kill()
        if daemon_pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon_pid, signal.SIGKILL)


def test_agnostic_json_keeps_stop_signal_and_pid_file_program(tmp_path: Path) -> None:
    """``build -P none`` writes both fields and ``generate-config`` reads them back."""
    model_file = tmp_path / "m.py"
    model_file.write_text(textwrap.dedent("""\
        from procmgmt import Instance, Process

        def processes(settings):
            return {"a": Instance(Process(
                name="a", daemon="/usr/bin/pg_ctl", daemon_args=["start"],
                foreground_process=None, pid_file="/x/postmaster.pid",
                pid_file_program="/usr/bin/postgres", stop_signal="INT"))}
        """))
    state = tmp_path / "state"

    def cli(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "procmgmt", *args, "--state-dir",
                               str(state)], capture_output=True, text=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    entry = Path(cli("build", "-P", "none", str(model_file)).strip().splitlines()[-1])
    spec = json.loads((entry / "a.json").read_text())
    assert (spec["stop_signal"], spec["pid_file_program"]) == ("INT", "/usr/bin/postgres")
    cli("generate-config", "-P", "bsdrc", "-o", str(tmp_path / "out"), str(entry / "a.json"))
    script = (tmp_path / "out" / "etc" / "rc.d" / "a").read_text()
    assert "\nprocname=/usr/bin/postgres\n" in script and "\nsig_stop=INT\n" in script
