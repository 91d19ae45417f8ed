"""SIGINT and SIGTERM: a switch interrupted once undoes itself, twice leaves a journal.

Real signals to a real ``python -m procmgmt switch``. Generation 1 is
``examples/webapps/processes.py``; the switch goes to ``models/slow.py``,
which restarts a changed ``webapp``, starts ``slowexit`` (2 s to exit after
SIGTERM) and waits for ``sleeper``, which never becomes ready. The signal
comes while the switch waits for ``sleeper``:

- once: what is in flight finishes, what the switch did is undone, generation 1
  runs again (the changed webapp, slowexit and sleeper are gone), no journal,
  exit 130 long before sleeper's 60-s readiness timeout;
- twice (the second during the undo, which waits for slowexit): procmgmt stops
  at once, exit 130, says 'procmgmt repair', leaves the journal; repair then
  restores generation 1.

And a Ctrl-C in the first instant, while the command line is still importing
or parsing, ends with "interrupted", never with a traceback from procmgmt.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.util import REPO, free_port_block
from tests.faults import (
    MODELS,
    PROFILE,
    SIMPLE,
    SIMPLE_PORTS,
    Cli,
    _environ,
    assert_generations_consistent,
    assert_serves,
    cleanup,
    marked,
    running_pids,
    wait_marked_names,
)

SLOW = MODELS / "slow.py"


def _journal(state: Path) -> Path:
    return state / "lib" / "procmgmt" / "profiles" / f"{PROFILE}.journal"


def _switch_until(run: Cli, line: str, timeout: float = 60) -> tuple[subprocess.Popen[str], str]:
    """Start ``switch models/slow.py`` in a new process; return once it printed ``line``."""
    argv = run.argv("switch", "--replace", SLOW)
    proc = subprocess.Popen([sys.executable, "-m", "procmgmt", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=run.cwd)
    assert proc.stdout is not None
    # Read the descriptor itself, never the buffered file: a readline() that took
    # several lines in one read would leave ``line`` in the buffer, where select()
    # does not see it, until the switch printed more (at sleeper's 60-s timeout,
    # when the signal this waits to send came far too late).
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while line.encode() not in seen:
        assert time.monotonic() < deadline, f"no {line!r} within {timeout} s:\n{seen!r}"
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, (f"the switch ended before {line!r}:\n{seen.decode()}"
                           f"{proc.communicate()[1]}")
            seen += chunk
    return proc, seen.decode()


def _setup(backend: str, tmp_path: Path) -> tuple[Cli, Path, int, Path]:
    base = free_port_block(3)
    state = tmp_path / "state"
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    run = Cli(state, backend, {"port_base": base, "probe_port": base + 2,
                               "stamp_dir": str(stamps)}, cwd=tmp_path)
    return run, state, base, stamps


def _only_generation_1(state: Path) -> None:
    assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS), marked(state)
    assert all(_environ(pid).get("FAULT_TEST_GENERATION", "1") == "1"
               for pid in marked(state)), "a process of the interrupted switch still runs"


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("backend", ["sysvinit", "supervisord"])
def test_one_signal_undoes_the_switch(backend: str, name: str, tmp_path: Path) -> None:
    """One signal: finish what is in flight, restore generation 1, exit 130, no journal."""
    signum = signal.Signals[name]
    run, state, base, stamps = _setup(backend, tmp_path)
    try:
        run("switch", SIMPLE)
        before = running_pids(run)
        proc, seen = _switch_until(run, "starting sleeper")
        time.sleep(0.5)  # slowexit is up (its start grace is 0.2 s)
        t0 = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
        out = seen + out
        assert proc.returncode == 130, f"ended {took:.1f} s after the signal\n{out}{err}"
        assert signum.name in err and "restoring the previous generation" in err, err
        assert "interrupted: the previous generation was restored" in err, err
        assert "Traceback" not in err, err
        assert took < 30, f"the interrupted switch took {took:.1f} s to undo"
        assert not _journal(state).exists()
        assert (stamps / "slowexit.term").exists(), "slowexit was never stopped"
        assert_generations_consistent(run, current=1)
        assert_serves(base, SIMPLE_PORTS)
        _only_generation_1(state)
        assert running_pids(run)["webapp1"] == before["webapp1"], "webapp1 was restarted"
        assert "nothing to repair" in run("repair").stdout
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


@pytest.mark.e2e
def test_second_signal_leaves_the_journal(tmp_path: Path) -> None:
    """A second SIGINT during the undo: stop at once, exit 130, say 'procmgmt repair',
    keep the journal; repair then restores generation 1."""
    run, state, base, stamps = _setup("sysvinit", tmp_path)
    try:
        run("switch", SIMPLE)
        proc, _ = _switch_until(run, "starting sleeper")
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        # The undo waits about 2 s for slowexit to exit: interrupt it there.
        deadline = time.monotonic() + 10
        while not (stamps / "slowexit.term").exists():
            assert time.monotonic() < deadline, "the undo never stopped slowexit"
            time.sleep(0.02)
        t1 = time.monotonic() - t0
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (f"slowexit stopped {t1:.1f} s after the first signal, "
                                        f"the switch ended {time.monotonic() - t0:.1f} s after "
                                        f"it\n{out}{err}")
        assert "interrupted again" in err and "procmgmt repair" in err, err
        assert "Traceback" not in err, err
        assert _journal(state).exists(), "the journal must stay for repair"
        rep = run("repair", fresh=True)
        assert "repaired" in rep.stdout, rep.stdout + rep.stderr
        assert not _journal(state).exists()
        assert_generations_consistent(run, current=1)
        assert_serves(base, SIMPLE_PORTS)
        _only_generation_1(state)
    finally:
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


#: A traceback line from procmgmt's own code (not from the interpreter's start-up).
OWN_FRAME = re.compile(r'File "[^"]*/procmgmt/[^"]*"')


@pytest.mark.e2e
@pytest.mark.parametrize("entry", ["module", "script"])
def test_interrupt_in_the_first_instant(entry: str, tmp_path: Path) -> None:
    """SIGINT at many moments of start-up (imports, argument parsing, model evaluation):
    'procmgmt: interrupted', exit 130, never a traceback of procmgmt's. (A signal inside
    the interpreter's own start-up, before any procmgmt code runs, is Python's alone.)"""
    if entry == "module":
        cmd = [sys.executable, "-m", "procmgmt"]
    else:
        script = Path(sys.executable).parent / "procmgmt"
        if not script.exists():
            pytest.skip("no procmgmt console script next to the interpreter")
        cmd = [str(script)]
    argv = [*cmd, "switch", "--dry-run", "--state-dir", str(tmp_path / "state"),
            "-P", "sysvinit", "--force-disable-user-change", str(SIMPLE)]
    handled = 0
    for delay in (0.05, 0.08, 0.12, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7):
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=tmp_path)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert not OWN_FRAME.search(err), f"after {delay} s:\n{err}"
        assert "internal error" not in err, err
        if proc.returncode == 130:
            assert "procmgmt: interrupted" in err, err
            handled += 1
    assert handled, "no signal reached procmgmt's own code: start-up is unusually slow"


def test_interrupt_at_every_import(tmp_path: Path) -> None:
    """Deterministically: a KeyboardInterrupt raised by the Nth import of a procmgmt
    module (as a Ctrl-C there would) ends with 'procmgmt: interrupted', exit 130."""
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import sys\n"
        "n = int(sys.argv[1]); count = [0]\n"
        "class Trap:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith('procmgmt.') and name != 'procmgmt.__main__':\n"
        "            count[0] += 1\n"
        "            if count[0] == n:\n"
        "                raise KeyboardInterrupt\n"
        "        return None\n"
        "sys.meta_path.insert(0, Trap())\n"
        "from procmgmt.__main__ import run\n"
        "sys.argv = ['procmgmt', *sys.argv[2:]]\n"
        "sys.exit(run())\n")
    argv = ["switch", "--dry-run", "--state-dir", str(tmp_path / "state"), "-P", "sysvinit",
            "--force-disable-user-change", str(SIMPLE)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    trapped = 0
    for n in (1, 2, 3, 5, 8, 13, 21, 34):
        proc = subprocess.run([sys.executable, str(driver), str(n), *argv], capture_output=True,
                              text=True, timeout=60, env=env, check=False)
        if proc.returncode == 0:
            break  # fewer imports than n: the command ran to its end
        assert proc.returncode == 130, f"import {n}: {proc.stdout}{proc.stderr}"
        assert proc.stderr.strip() == "procmgmt: interrupted", f"import {n}:\n{proc.stderr}"
        trapped += 1
    assert trapped >= 5, f"only {trapped} imports were interrupted"
