"""Many cycles of deploy, upgrade, rollback, undeploy: nothing leaks, no data is lost.

50 cycles in-process (``deploy.switch.Switcher``, sysvinit, the cheap
processes of ``models/cheap.py``), then a few through the command line.
After every undeploy no process carries the deployment's marker; the number
of open file descriptors of this process (``/proc/self/fd``) is the same
after the last cycle as after the first; after deleting old generations,
``gc`` brings the store back to the same number of entries every cycle
while every kept generation stays complete; and the data file ``alpha``
appends to in the state directory holds one line per deployment: undeploy,
rollback and gc never deleted it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from procmgmt.deploy import store
from procmgmt.deploy.gc import collect
from procmgmt.deploy.options import Options
from procmgmt.deploy.profile import Profile
from procmgmt.deploy.switch import Switcher
from procmgmt.manifest import load_generation
from procmgmt.settings import Settings, resolve
from tests.faults import MODELS, Cli, assert_generations_consistent, cleanup, marked

CHEAP = MODELS / "cheap.py"
CYCLES = 50
CLI_CYCLES = 3
#: Generations kept before each gc: the current one and the two before it.
KEEP = 3


def _settings(state: Path, variant: int) -> Settings:
    return resolve({"state_dir": str(state), "process_manager": "sysvinit",
                    "force_disable_user_change": True, "extra_params": {"variant": variant}},
                   environ={})


def _switcher(settings: Settings) -> Switcher:
    # A fresh switcher per switch, as each CLI command makes one; a short grace keeps 200
    # switches quick (sleep does not crash: the grace only has to notice an early exit).
    return Switcher(settings, Options(start_grace=0.05), out=io.StringIO())


def deploy(settings: Settings, model: Path | None) -> int:
    """Build ``model`` (None: the empty model) and switch to it as a new generation."""
    number = _switcher(settings).deploy(None if model is None else str(model)).number
    assert number is not None
    return number


def rollback(settings: Settings) -> int:
    """Switch to the generation before the current one."""
    number = _switcher(settings).rollback().number
    assert number is not None
    return number


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _pids_by_name(state: Path) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for pid, name in marked(state).items():
        out.setdefault(name, set()).add(pid)
    return out


def _collect_keeping_last(settings: Settings) -> int:
    """Delete all but the newest KEEP generations, gc; the number of store entries left."""
    profile = Profile(settings)
    gens = [g.number for g in profile.generations()]
    profile.delete(gens[:-KEEP])
    collect(settings)
    for g in profile.generations():  # what is kept is complete
        gen = load_generation(g.target)
        for p in gen.processes:
            assert os.path.isdir(p.path), f"gc deleted {p.path} of generation {g.number}"
    return len(store.entries(settings.store_dir))


@pytest.mark.e2e
def test_cycles_in_process(tmp_path: Path) -> None:
    """50 x (deploy, upgrade, rollback, undeploy) through the engine: no leaked process,
    file descriptor or store entry; the state dir's data survives every step."""
    state = tmp_path / "state"
    base = _settings(state, 0)
    fds: list[int] = []
    sizes: list[int] = []
    log = Path(base.lib_dir) / "cycles" / "alpha.log"
    try:
        for cycle in range(CYCLES):
            first = deploy(base, CHEAP)
            running = _pids_by_name(state)
            assert set(running) == {"alpha", "beta", "gamma"}, running
            upgraded = deploy(_settings(state, cycle + 1), CHEAP)
            assert upgraded == first + 1
            after = _pids_by_name(state)
            assert after["alpha"] == running["alpha"] and after["beta"] == running["beta"], \
                "an unchanged process was restarted by the upgrade"
            assert after["gamma"] != running["gamma"], "the changed process was not restarted"
            assert rollback(base) == first
            assert set(_pids_by_name(state)) == {"alpha", "beta", "gamma"}
            deploy(base, None)
            assert marked(state) == {}, f"cycle {cycle}: processes left after undeploy"
            sizes.append(_collect_keeping_last(base))
            fds.append(_fds())
        assert len(log.read_text().splitlines()) == CYCLES, "the state dir's data was lost"
        assert len(set(sizes[1:])) == 1, f"store entries after gc per cycle: {sizes}"
        # No growth: a leak of one descriptor in every cycle, or now and then, ends
        # above where the run began (one closed later than it was opened, a
        # cached socket say, ends below: not a leak).
        half = CYCLES // 2
        assert fds[-1] <= fds[0] and max(fds[half:]) <= max(fds[:half]), \
            f"open file descriptors per cycle: {fds}"
    finally:
        cleanup(Cli(state, "sysvinit", {}, cwd=tmp_path), state)
    assert marked(state) == {}


@pytest.mark.e2e
def test_cycles_through_cli(tmp_path: Path) -> None:
    """A few cycles through the command line (switch, --rollback, --undeploy,
    --delete-all-generations, gc): --list-generations stays consistent, nothing is left
    running, gc empties the store of everything no generation references, data stays."""
    state = tmp_path / "state"
    v0 = Cli(state, "sysvinit", {"variant": 0}, cwd=tmp_path)
    store_dir = str(state / "lib" / "procmgmt" / "store")
    sizes: list[int] = []
    try:
        for cycle in range(CLI_CYCLES):
            assert "generation 1 deployed" in v0("switch", CHEAP).stdout
            upgrade = Cli(state, "sysvinit", {"variant": cycle + 1}, cwd=tmp_path)
            out = upgrade("switch", CHEAP).stdout
            assert "generation 2 deployed" in out and "starting gamma" in out, out
            out = v0("switch", "--rollback").stdout
            assert "switched to generation 1" in out and "starting gamma" in out, out
            v0("switch", "--undeploy")
            assert marked(state) == {}, f"cycle {cycle}: processes left after undeploy"
            assert_generations_consistent(v0, current=3)
            v0("switch", "--delete-all-generations")
            assert v0("switch", "--list-generations").stdout.strip() == ""
            assert "store entries deleted" in v0("gc").stdout
            sizes.append(len(store.entries(store_dir)))
        assert sizes == [0] * CLI_CYCLES, f"store entries left by gc per cycle: {sizes}"
        log = state / "lib" / "cycles" / "alpha.log"
        assert len(log.read_text().splitlines()) == CLI_CYCLES, "the state dir's data was lost"
    finally:
        cleanup(v0, state)
    assert marked(state) == {}
