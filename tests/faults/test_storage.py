"""A full disk and a read-only store: a clear error, exit 1, the previous generation intact.

Generation 1 (``examples/webapps/processes.py``, sysvinit) runs; then the
switch to ``processes-advanced.py`` meets

- a full disk: the state dir is a 2 MiB tmpfs (root only), filled up with a
  file. The build cannot write its store entries; with those entries written
  beforehand (``procmgmt build``), the switch cannot write its journal. Each
  time: exit 1, the operation, the path, "No space left on device" and the
  space left, no journal, no half-written store entry, generation 1 answering
  and current. With space again the same switch succeeds.
- a read-only store (a read-only bind mount as root, mode 0555 otherwise):
  exit 1 naming the store path and the reason, generation 1 intact.

Never "internal error: OSError(...)", never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.util import free_port_block
from tests.faults import (
    ADVANCED,
    ADVANCED_PORTS,
    PROFILE,
    SIMPLE,
    SIMPLE_PORTS,
    Cli,
    assert_generations_consistent,
    assert_serves,
    assert_silent,
    cleanup,
    marked,
    wait_marked_names,
)

ADVANCED_ONLY = {n: o for n, o in ADVANCED_PORTS.items() if n not in SIMPLE_PORTS}


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def _unmounted_after(path: Path) -> Iterator[None]:
    """Unmount ``path`` on the way out (lazily if something still holds it)."""
    try:
        yield
    finally:
        if subprocess.run(["umount", str(path)], check=False,
                          capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def _fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def _check_clean_failure(proc: subprocess.CompletedProcess[str], run: Cli, state: Path,
                         base: int) -> None:
    err = proc.stdout + proc.stderr
    assert proc.returncode == 1, err
    assert "internal error" not in err and "Traceback" not in err, err
    assert not (state / "lib" / "procmgmt" / "profiles" / f"{PROFILE}.journal").exists()
    assert_generations_consistent(run, current=1)
    assert_serves(base, SIMPLE_PORTS)
    assert_silent(base, ADVANCED_ONLY)
    assert wait_marked_names(state, set(SIMPLE_PORTS)) == set(SIMPLE_PORTS), marked(state)


@pytest.mark.e2e
@pytest.mark.root
def test_full_disk(tmp_path: Path) -> None:
    """ENOSPC while building and while journalling: clear message with the free space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a 2 MiB tmpfs needs root")
    base = free_port_block(7)
    state = tmp_path / "state"
    state.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(state))
    run = Cli(state, "sysvinit", {"port_base": base}, cwd=tmp_path)
    with _unmounted_after(state):
        try:
            run("switch", SIMPLE)
            filler = _fill(state)
            store = state / "lib" / "procmgmt" / "store"
            entries = sorted(os.listdir(store))

            built = run("switch", "--replace", ADVANCED, check=False, fresh=True)
            _check_clean_failure(built, run, state, base)
            assert "cannot write the store entry of" in built.stderr, built.stderr
            assert str(store) in built.stderr, built.stderr
            assert "No space left on device" in built.stderr, built.stderr
            assert " free of 2.0 MiB" in built.stderr, built.stderr
            assert sorted(os.listdir(store)) == entries, "a partial store entry was left"

            # The store entries exist: the first write of the switch itself is its journal.
            filler.unlink()
            run("build", ADVANCED)
            _fill(state)
            journal = run("switch", "--replace", ADVANCED, check=False, fresh=True)
            _check_clean_failure(journal, run, state, base)
            assert "cannot write the switch journal" in journal.stderr, journal.stderr
            assert "No space left on device" in journal.stderr, journal.stderr
            assert "stopping" not in journal.stdout, "something was stopped before the journal"

            filler.unlink()
            ok = run("switch", "--replace", ADVANCED, fresh=True)
            assert "generation 2 deployed" in ok.stdout, ok.stdout + ok.stderr
            assert_serves(base, ADVANCED_PORTS)
        finally:
            with contextlib.suppress(OSError):
                (state / "filler").unlink()
            cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"


@pytest.mark.e2e
def test_read_only_store(tmp_path: Path) -> None:
    """A store that cannot be written: exit 1 naming the store path and why."""
    base = free_port_block(7)
    state = tmp_path / "state"
    run = Cli(state, "sysvinit", {"port_base": base}, cwd=tmp_path)
    store = state / "lib" / "procmgmt" / "store"
    root = os.geteuid() == 0
    try:
        run("switch", SIMPLE)
        if root:
            _mount("--bind", str(store), str(store))
            _mount("-o", "remount,bind,ro", str(store))
        else:
            store.chmod(0o555)
        with _unmounted_after(store) if root else contextlib.nullcontext():
            proc = run("switch", "--replace", ADVANCED, check=False, fresh=True)
            _check_clean_failure(proc, run, state, base)
            assert "cannot write the store entry of" in proc.stderr, proc.stderr
            assert str(store) in proc.stderr, proc.stderr
            reason = "Read-only file system" if root else "Permission denied"
            assert reason in proc.stderr, proc.stderr
        if not root:
            store.chmod(0o755)
        ok = run("switch", "--replace", ADVANCED, fresh=True)
        assert "generation 2 deployed" in ok.stdout, ok.stdout + ok.stderr
    finally:
        if not root:
            store.chmod(0o755)
        cleanup(run, state)
    assert marked(state) == {}, "processes of the deployment survived the undeploy"
