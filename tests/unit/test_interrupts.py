"""An exception caused by a Ctrl-C is reported as an interruption wherever it surfaces:
while the command line loads (``python -m procmgmt``), inside a command
(``run_guarded``), and never as an internal error or a traceback."""

from __future__ import annotations

import sys
import types

import pytest

from procmgmt import __main__ as entry
from procmgmt.cli.present import EXIT_INTERNAL, run_guarded
from procmgmt.interrupts import caused_by_interrupt


def _wrapped() -> RuntimeError:
    """What Python 3.11 raises when a class body's ``__set_name__`` gets the interrupt."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from ki
    except RuntimeError as exc:
        return exc


def _during_cleanup() -> ValueError:
    """An error raised while handling the interrupt (its context, not its cause)."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ValueError("cleanup failed") from None
    except ValueError as exc:
        exc.__suppress_context__ = False
        return exc


def test_the_chain_is_searched() -> None:
    assert caused_by_interrupt(KeyboardInterrupt())
    assert caused_by_interrupt(_wrapped())
    assert caused_by_interrupt(_during_cleanup())
    assert caused_by_interrupt(BaseExceptionGroup("g", [ValueError(), KeyboardInterrupt()]))
    assert not caused_by_interrupt(RuntimeError("a bug"))
    plain = ValueError("outer")
    plain.__context__ = TypeError("inner")
    assert not caused_by_interrupt(plain)


def test_a_cycle_in_the_chain_ends() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert not caused_by_interrupt(a)


def test_a_command_ending_in_a_wrapped_interrupt_exits_130(
        capsys: pytest.CaptureFixture[str]) -> None:
    def command() -> int:
        raise _wrapped()

    assert run_guarded(command) == 130
    err = capsys.readouterr().err
    assert err.strip() == "procmgmt: interrupted"


def test_a_real_bug_is_still_an_internal_error(capsys: pytest.CaptureFixture[str]) -> None:
    def command() -> int:
        raise RuntimeError("a bug")

    assert run_guarded(command) == EXIT_INTERNAL
    assert "internal error" in capsys.readouterr().err


class _Loading(types.ModuleType):
    """A ``procmgmt.cli.main`` whose import is interrupted in a wrapped way."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__("procmgmt.cli.main")
        self._exc = exc

    def __getattr__(self, name: str) -> object:
        raise self._exc


def test_an_interrupt_wrapped_while_loading_exits_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "procmgmt.cli.main", _Loading(_wrapped()))
    assert entry.run() == 130
    assert capsys.readouterr().err == "procmgmt: interrupted\n"


def test_other_errors_while_loading_are_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "procmgmt.cli.main", _Loading(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        entry.run()
    monkeypatch.setitem(sys.modules, "procmgmt.cli.main", _Loading(SystemExit(3)))
    with pytest.raises(SystemExit):
        entry.run()
