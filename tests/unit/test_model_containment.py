"""Model evaluation is contained: what the model prints never reaches machine-readable
stdout, a FIFO or a hang ends with a message, Ctrl-C stays an interruption.

These run ``procmgmt`` as a subprocess: the cases are about real file
descriptors and signals, and a regression must fail (time out), not hang
the test run or end it (``os._exit``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: Prints on every channel a model has: print, sys.stdout, fd 1, a child process,
#: an override function, module level.
NOISY_MODEL = '''
import os, subprocess, sys
from procmgmt import Instance, Process

print("NOISE module level")

def patch(native):
    print("NOISE override function")
    return native

def processes(settings):
    print("NOISE print")
    sys.stdout.write("NOISE sys.stdout\\n")
    sys.__stdout__.write("NOISE sys.__stdout__\\n")
    os.write(1, b"NOISE fd 1\\n")
    subprocess.run(["sh", "-c", "echo NOISE child process"], check=True)
    db = Process(name="db", process="/bin/sleep", args=["1000"],
                 overrides={"sysvinit": patch, "supervisord": patch})
    web = Process(name="web", process="/bin/sleep", args=["1000"], dependencies=[db])
    return {"db": Instance(db, requires_unique_ids_for=["ports"]),
            "web": Instance(web, requires_unique_ids_for=["ports"])}
'''
NOISE = ("NOISE module level", "NOISE override function", "NOISE print", "NOISE sys.stdout",
         "NOISE sys.__stdout__", "NOISE fd 1", "NOISE child process")


def procmgmt(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m procmgmt ARGS`` with a hard time limit (a hang fails the test), with
    stdout block-buffered as a user's is (without PYTHONUNBUFFERED, which some
    environments set: what a model left in sys.__stdout__'s buffer must not leak)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run([sys.executable, "-m", "procmgmt", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
                          env=env)


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    model = tmp_path / "noisy.py"
    model.write_text(NOISY_MODEL)
    return model


def test_build_prints_only_the_generation_path(noisy: Path, tmp_path: Path) -> None:
    result = procmgmt("build", "--state-dir", str(tmp_path / "s"), "-P", "sysvinit", str(noisy))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and os.path.isdir(lines[0]), result.stdout
    for line in NOISE:
        assert line in result.stderr, line


def test_id_assign_prints_parseable_json(noisy: Path, tmp_path: Path) -> None:
    resources = tmp_path / "resources.json"
    resources.write_text(json.dumps({"ports": {"min": 7000, "max": 7100}}))
    result = procmgmt("id-assign", "--state-dir", str(tmp_path / "s"),
                      "--id-resources", str(resources), str(noisy))
    assert result.returncode == 0, result.stderr
    ids = json.loads(result.stdout)
    assert set(ids["ids"]["ports"]) == {"db", "web"}
    assert "NOISE print" in result.stderr


def test_graph_prints_only_dot(noisy: Path, tmp_path: Path) -> None:
    result = procmgmt("graph", "--state-dir", str(tmp_path / "s"), str(noisy))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("digraph"), result.stdout
    assert result.stdout.rstrip().endswith("}")
    assert not any(line in result.stdout for line in NOISE)
    assert "NOISE fd 1" in result.stderr


def test_fifo_model_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "processes.py"
    os.mkfifo(fifo)
    result = procmgmt("build", "--state-dir", str(tmp_path / "s"), str(fifo), timeout=30)
    assert result.returncode == 2
    assert f"{fifo}: is not a regular file (a FIFO)" in result.stderr


def test_fifo_read_by_the_model_hits_the_time_limit(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "ports.txt")
    model = tmp_path / "processes.py"
    model.write_text("import os\nPORTS = open(os.path.join(os.path.dirname(__file__), "
                     "'ports.txt')).read()\n\ndef processes(settings):\n    return {}\n")
    began = time.monotonic()
    result = procmgmt("build", "--state-dir", str(tmp_path / "s"), "--model-timeout", "1",
                      str(model), timeout=30)
    assert result.returncode == 2
    assert f"{model}:2: evaluating the model failed: did not finish within 1 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - began < 20


def test_model_timeout_from_the_environment(tmp_path: Path) -> None:
    model = tmp_path / "hang.py"
    model.write_text("import time\n\ndef processes(settings):\n    time.sleep(600)\n")
    result = subprocess.run([sys.executable, "-m", "procmgmt", "build", "--state-dir",
                             str(tmp_path / "s"), str(model)], capture_output=True, text=True,
                            timeout=30, check=False,
                            env={**os.environ, "PROCMGMT_MODEL_TIMEOUT": "0.5"})
    assert result.returncode == 2
    assert f"{model}:4: evaluating the model failed: did not finish within 0.5 s" in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_model_timeout_must_be_a_positive_number(tmp_path: Path, value: str) -> None:
    result = procmgmt("build", "--state-dir", str(tmp_path / "s"), "--model-timeout", value,
                      "m.py")
    assert result.returncode == 2
    assert "--model-timeout: expected a positive number of seconds" in result.stderr


def test_model_that_swallows_the_timeout_is_ended(tmp_path: Path) -> None:
    model = tmp_path / "stubborn.py"
    model.write_text("import time\n\ndef processes(settings):\n    while True:\n        try:\n"
                     "            time.sleep(100)\n        except BaseException:\n"
                     "            pass\n")
    result = procmgmt("build", "--state-dir", str(tmp_path / "s"), "--model-timeout", "0.5",
                      str(model), timeout=30)
    assert result.returncode == 2
    assert "did not finish within 0.5 s and ignored being stopped" in result.stderr
    assert str(model) in result.stderr


def test_ctrl_c_during_evaluation_is_an_interruption(tmp_path: Path) -> None:
    model = tmp_path / "slow.py"
    model.write_text("import sys, time\n\ndef processes(settings):\n"
                     "    print('evaluating', file=sys.stderr, flush=True)\n"
                     "    time.sleep(60)\n    return {}\n")
    proc = subprocess.Popen([sys.executable, "-m", "procmgmt", "build", "--state-dir",
                             str(tmp_path / "s"), str(model)], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        assert proc.stderr.readline().strip() == "evaluating"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "procmgmt: interrupted" in err
    assert "evaluating the model failed" not in err


def test_a_child_the_model_forks_still_exits(tmp_path: Path) -> None:
    """The os._exit stand-in raises only in procmgmt's own process: a forked child
    that calls os._exit really ends (else it would carry on as a second procmgmt)."""
    model = tmp_path / "forks.py"
    model.write_text("import os\nfrom procmgmt import Process\n\ndef processes(settings):\n"
                     "    pid = os.fork()\n    if pid == 0:\n        os._exit(7)\n"
                     "    _, status = os.waitpid(pid, 0)\n"
                     "    assert os.waitstatus_to_exitcode(status) == 7, status\n"
                     "    return {'web': Process(name='web', process='/bin/sleep')}\n")
    result = procmgmt("build", "--state-dir", str(tmp_path / "s"), "-P", "sysvinit",
                      str(model))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1


def test_the_model_file_is_the_users_even_inside_a_library_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model installed with a package (under site-packages) still gets its line."""
    from procmgmt.errors import ModelLoadError
    from procmgmt.model import contain
    from procmgmt.model.loader import load_model
    from procmgmt.settings import resolve

    model = tmp_path / "processes.py"
    model.write_text("def processes(settings):\n    raise ValueError('no')\n")
    monkeypatch.setattr(contain, "_LIBRARY_DIRS", (str(tmp_path),))
    with pytest.raises(ModelLoadError, match=rf"{model}:2: evaluating the model failed: "
                                             "ValueError: no"):
        load_model(str(model), resolve({"state_dir": str(tmp_path / "s")}, {}))


#: A Ctrl-C that lands in a class body's ``__set_name__`` (as one did in a dataclass of
#: procmgmt's own while the command line loaded): Python 3.11 wraps it in RuntimeError.
SET_NAME_MODEL = '''
import signal

class Interrupted:
    def __set_name__(self, owner, name):
        signal.raise_signal(signal.SIGINT)

def processes(settings):
    class Holder:
        field = Interrupted()
    return {}
'''


def test_ctrl_c_wrapped_by_python_is_still_an_interruption(tmp_path: Path) -> None:
    model = tmp_path / "setname.py"
    model.write_text(SET_NAME_MODEL)
    result = procmgmt("build", "--state-dir", str(tmp_path / "s"), str(model), timeout=30)
    assert result.returncode == 130, result.stderr
    assert "procmgmt: interrupted" in result.stderr
    assert "evaluating the model failed" not in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
