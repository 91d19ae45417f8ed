"""The runnable backends for real: awkward argv, environment, working directory and
pid file reach a started process exactly.

The recorder (``recorder.py``) is started through the real backend (the
full pipeline: model file, validation, build, store, engine, activator) and
writes what it received; the test compares that with the model's values.
One deployment per backend is kept for the whole module and switched from
model to model, so that Hypothesis' examples cost a switch each (the number
of real runs is bounded by ``max_examples``). The deployment is undeployed
at the end and ``procmgmt.testing.deployed`` checks that no process of it is
left.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procmgmt.errors import ValidationError
from procmgmt.testing import Deployment, deployed
from tests import _lanes
from tests.injection import AWKWARD, COMPONENT, ENV_NAME, RECORDER, refusal_is_clear

#: Starts the runnable backends for real (Hypothesis examples included): end-to-end.
pytestmark = pytest.mark.e2e

RUNNABLE = ("sysvinit", "supervisord", "runit")
#: Backends whose files are shell scripts: any value without NUL reaches the process.
SHELL_ONLY = ("sysvinit", "runit")

#: The model: one recorder per entry of cases.json next to it.
MODEL = '''
import json, os
from procmgmt import Instance, Process

HERE = os.path.dirname(os.path.abspath(__file__))


def processes(settings):
    with open(os.path.join(HERE, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    out = {}
    for c in cases:
        argv = ["-X", "utf8", c["recorder"], *c["args"]]
        if c["mode"] == "daemon":
            proc = Process(name=c["name"], daemon=c["python"], foreground_process=None,
                           args=argv, environment=c["env"], directory=c["directory"],
                           pid_file=c["pid_file"])
        else:
            proc = Process(name=c["name"], foreground_process=c["python"], daemon=None,
                           args=argv, environment=c["env"], directory=c["directory"],
                           pid_file=c["pid_file"])
        out[c["name"]] = Instance(proc)
    return out
'''


class Runner:
    """A live deployment of one backend plus the directory its models live in."""

    def __init__(self, backend: str, root: Path, deployment: Deployment) -> None:
        self.backend = backend
        self.root = root
        self.d = deployment
        self.count = 0

    def case(self, args: list[str], env: dict[str, str], mode: str, dirname: str | None,
             pidname: str | None) -> dict[str, Any]:
        """One recorder process: its directory and pid file (if named) are created
        below the state dir with the awkward names."""
        self.count += 1
        name = f"rec{self.count}"
        directory = None
        if dirname is not None:
            d = self.root / "work" / f"{self.count}-{dirname}"
            d.mkdir(parents=True)
            directory = str(d)
        pid_file = None
        if pidname is not None or mode == "daemon":
            p = self.root / "pids" / f"{self.count}-{pidname or 'x'}"
            p.mkdir(parents=True)
            pid_file = str(p / f"{pidname or 'x'}.pid")
        out = self.root / "records" / f"{name}.json"
        full_env = {**env, "RECORDER_OUT": str(out), "RECORDER_NONCE": str(self.count),
                    "RECORDER_MODE": "daemon" if mode == "daemon" else "stay"}
        if mode == "daemon":
            assert pid_file is not None
            full_env["RECORDER_PID_FILE"] = pid_file
        return {"name": name, "python": sys.executable, "recorder": str(RECORDER),
                "args": args, "env": full_env, "mode": mode, "directory": directory,
                "pid_file": pid_file, "out": str(out)}

    def run(self, cases: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Switch to a model of ``cases``; the records (None when refused clearly)."""
        (self.root / "records").mkdir(exist_ok=True)
        (self.root / "model" / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
        try:
            self.d.switch(self.root / "model" / "processes.py")
        except ValidationError as exc:
            refusal_is_clear(exc, self.backend)
            return None
        records = []
        for c in cases:
            out = Path(c["out"])
            deadline = time.monotonic() + 15
            while not out.exists():
                assert time.monotonic() < deadline, f"{c['name']} wrote no record"
                time.sleep(0.02)
            records.append(json.loads(out.read_text(encoding="utf-8")))
        return records


def check(cases: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """Each recorder got exactly its argv, environment values and working directory,
    and a daemon's pid file (at the awkward path) names the recorded process."""
    for c, rec in zip(cases, records, strict=True):
        assert rec["argv"] == c["args"], c["name"]
        for key, value in c["env"].items():
            assert rec["env"].get(key) == value, (c["name"], key)
        if c["directory"] is not None:
            assert rec["cwd"] == c["directory"], c["name"]
        if c["mode"] == "daemon":
            assert Path(c["pid_file"]).read_text().strip() == str(rec["pid"])


@pytest.fixture(scope="module", params=RUNNABLE)
def runner(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    """A deployment of the backend, alive for the whole module, checked for leftovers."""
    backend = str(request.param)
    if backend == "runit":
        _lanes.require_tool("runsvdir")
    root = tmp_path_factory.mktemp(f"run-{backend}")
    (root / "model").mkdir()
    (root / "model" / "processes.py").write_text(MODEL, encoding="utf-8")
    (root / "model" / "cases.json").write_text("[]", encoding="utf-8")
    with deployed(root / "model" / "processes.py", backend=backend,
                  state_dir=root / "state") as d:
        yield Runner(backend, root, d)


#: Fixed nasty values: every one must reach the process (both backends can hold
#: them: sysvinit in any form, supervisord because none needs what its format lacks).
NASTY_ARGS = ["a b", "it's", 'say "hi"', "$HOME", "${X}", "$(id)", "`id`", "back\\slash",
              "100%", "%%", "%(here)s", "%(ENV_HOME)s", "x;y", "x ;y", "x #y", "#", "*", "?",
              "[a-z]", "~", "", " ", "grüße ☃", "tab\there", "-D", "--", "!", "&&", "|"]
NASTY_ENV = {"A": "x y", "B": "it's", "C": "$HOME `id` $(id)", "D": "100% %%", "E": "back\\sl",
             "F": "grüße ☃", "G": "*?[a]", "H": "", "I": "a;b", "J": "a=b,c", "K": "tab\there",
             "L": "%(ENV_HOME)s x"}


def test_fixed_nasty_values_reach_the_process(runner: Runner) -> None:
    """Foreground and daemon recorders with nasty argv, environment, working
    directory and pid file get exactly those values."""
    cases = [
        runner.case(NASTY_ARGS, NASTY_ENV, "foreground", "dir it's $x `y` 100%;#", None),
        runner.case(NASTY_ARGS, NASTY_ENV, "daemon", "dä mon", "pid 'q' $p `x` 100%"),
        runner.case(["just one"], {"Q": 'a"b'}, "foreground", None, "fg pid ☃"),
    ]
    records = runner.run(cases)
    assert records is not None, "these values are representable by every runnable backend"
    check(cases, records)


def test_line_breaks(runner: Runner) -> None:
    """Line breaks in arguments, environment values and paths reach the process
    under sysvinit and runit (shell scripts); supervisord's one-line config values
    cannot hold them, so the model is refused with problems naming the fields instead."""
    cases = [runner.case(["line1\nline2", "\n", "cr\rlf"], {"NL": "a\nb"}, "foreground",
                         "new\nline", "pid\nfile")]
    records = runner.run(cases)
    if runner.backend in SHELL_ONLY:
        assert records is not None
        check(cases, records)
    else:
        assert records is None


def _awkward_values_reach_the_process(runner: Runner, data: st.DataObject,
                                      processes: int = 1) -> None:
    """Generated argv, environment values, working directory and pid file names
    reach the recorders (``processes`` of them in one switch) exactly, or the
    model is refused naming the field."""
    cases = [runner.case(
        data.draw(st.lists(AWKWARD, max_size=5)),
        data.draw(st.dictionaries(ENV_NAME.filter(lambda k: not k.startswith("RECORDER")),
                                  AWKWARD, max_size=4)),
        data.draw(st.sampled_from(["foreground", "daemon"])),
        data.draw(st.none() | COMPONENT),
        data.draw(st.none() | COMPONENT),
    ) for _ in range(processes)]
    records = runner.run(cases)
    if records is not None:
        check(cases, records)
    elif runner.backend in SHELL_ONLY:
        pytest.fail(f"{runner.backend} scripts can carry any value without NUL")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_awkward_values_reach_the_process(runner: Runner, data: st.DataObject) -> None:
    """Property (25 real runs per backend, runit below)."""
    if runner.backend == "runit":
        pytest.skip("runit: fewer examples in the test below")
    _awkward_values_reach_the_process(runner, data)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_awkward_values_reach_a_runit_process(runner: Runner, data: st.DataObject) -> None:
    """The same property with 4 runs of 6 processes each: every runit switch that
    adds a service waits for runsvdir's rescan (up to 5 s), which 25 runs of one
    process would turn into two minutes; 24 generated processes in 4 switches
    cover as many values in a quarter of the time."""
    if runner.backend != "runit":
        pytest.skip("the test above covers this backend")
    _awkward_values_reach_the_process(runner, data, processes=6)
