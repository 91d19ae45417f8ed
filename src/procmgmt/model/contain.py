"""Run the user's code (model file, constructors, override functions) contained.

A model is arbitrary Python, and whatever it does must end as a model
error naming the user's file and line, exit 2, never as a silent exit 0, a
hang, corrupted machine-readable output or a traceback. The objects a model
returns (processes with override functions, a dependency graph, free-form
metadata) are what every later step works on, so evaluation happens in this
process; a child process could not hand them back without pickling the
user's functions. Containment is therefore done here, around every call
into user code:

- stdout goes to stderr, on the Python level (``print``) and on the file
  descriptor level (``os.write(1, ...)``, subprocesses the model starts), so
  the JSON of ``id-assign`` and the DOT of ``graph`` stay parseable;
- ``sys.exit()`` and every other exception, ``BaseException`` included, is
  caught; ``os._exit()`` is replaced while user code runs by a function that
  raises instead (only in this process and thread: a child the model forks
  still exits for real);
- a time limit (``--model-timeout``, ``PROCMGMT_MODEL_TIMEOUT``) is enforced
  with ``SIGALRM``, which also interrupts blocking system calls (a FIFO,
  ``input()``, ``time.sleep``). A model that swallows the timeout exception
  and keeps running is ended after :data:`GRACE_SECONDS` more seconds with
  the same message and exit 2;
- Ctrl-C stays an interruption (exit 130), while a ``KeyboardInterrupt`` the
  model raises itself is a model error: a SIGINT handler records which it was.

Native code that never returns to the interpreter (a C loop that checks no
signals) cannot be interrupted from within the process; that is the one
case the time limit does not cover.
"""

from __future__ import annotations

import inspect
import math
import os
import posix
import re
import signal
import sys
import sysconfig
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType
from typing import Any

from procmgmt.errors import ProcmgmtError, UserCodeError
from procmgmt.interrupts import caused_by_interrupt
from procmgmt.suggest import did_you_mean

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Frames in these directories are never "the user's line": the standard
#: library and installed packages are called by the model, not written in it.
_LIBRARY_DIRS = tuple(sorted({os.path.abspath(p) for key in ("stdlib", "platstdlib", "purelib",
                                                             "platlib")
                              if (p := sysconfig.get_paths().get(key))}))
#: Seconds a model may go on after its time limit (swallowing the timeout
#: exception) before the process is ended with the timeout message.
GRACE_SECONDS = 5
#: How the timeout is named in messages: the setting that changes it.
TIMEOUT_HINT = "--model-timeout or PROCMGMT_MODEL_TIMEOUT"
_EXIT_MODEL_ERROR = 2
#: The real ``os._exit``, whatever stands in for it while user code runs.
_REAL_EXIT = posix._exit


class _Expired(BaseException):
    """Raised in user code by the alarm: the time limit passed.

    Control flow of this module, not an error of procmgmt (so not in
    :mod:`procmgmt.errors`): a ``BaseException``, so that user code's
    ``except Exception`` cannot swallow it; :func:`user_code` turns it into a
    :class:`~procmgmt.errors.UserCodeError` that names the time limit."""


class _Exited(BaseException):
    """Raised by the stand-in for ``os._exit`` while user code runs.

    Control flow of this module like :class:`_Expired`: it unwinds user code
    that tried to end the process, and :func:`user_code` reports the call."""

    def __init__(self, status: Any) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class _State:
    depth: int = 0
    interrupted: bool = False
    expired_ticks: int = 0
    timeout: float | None = None
    file: str | None = None


_state = _State()


def _is_library(path: str) -> bool:
    return (path.startswith(_PACKAGE_DIR + os.sep)
            or any(path.startswith(d + os.sep) for d in _LIBRARY_DIRS))


def user_frame(tb: Any, model_file: str | None = None) -> tuple[str, int] | None:
    """The innermost frame of a traceback that is in the user's own code: the
    model file wherever it lives, else anything but procmgmt, the standard
    library and installed packages."""
    best = None
    for frame in traceback.extract_tb(tb):
        if frame.filename.startswith("<") or not frame.lineno:
            continue
        path = os.path.abspath(frame.filename)
        if path == model_file or not _is_library(path):
            best = (frame.filename, frame.lineno)
    return best


def describe(exc: BaseException) -> str:
    """``Type: message``, even when the exception's ``__str__`` raises."""
    try:
        text = str(exc)
    except BaseException:
        text = "(its message cannot be shown: str() of it failed)"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _reason(exc: BaseException, timeout: float | None) -> str:
    if isinstance(exc, _Expired):
        return (f"did not finish within {timeout:g} s (a hang, or a FIFO or device read "
                f"instead of a file?); the time limit is set with {TIMEOUT_HINT}")
    if isinstance(exc, _Exited | SystemExit):
        call = (f"os._exit({exc.status!r})" if isinstance(exc, _Exited)
                else f"sys.exit({exc.code!r})")
        return (f"{call} was called: a model and its override functions return, "
                "they never end the program")
    if isinstance(exc, RecursionError):
        return f"{describe(exc)} (endless recursion?)"
    if isinstance(exc, TypeError):
        return unknown_keyword(exc) or describe(exc)
    return describe(exc)


_UNEXPECTED = re.compile(r"^(?P<cls>\w+)(?:\.__init__)?\(\) got an unexpected keyword "
                         r"argument '(?P<kw>\w+)'$")


def unknown_keyword(exc: TypeError) -> str | None:
    """For a misspelled keyword of a class of procmgmt's model API (``Process``,
    ``Credentials``, the readiness checks...): which parameter was meant. None for
    any other TypeError (a function of the user's own: its name is all Python says)."""
    from procmgmt import readiness
    from procmgmt.model import credentials, process

    m = _UNEXPECTED.match(str(exc))
    if m is None:
        return None
    classes = {c.__name__: c for c in (process.Process, process.Instance, credentials.Credentials,
                                       credentials.User, credentials.Group, readiness.TCP,
                                       readiness.HTTP, readiness.Command, readiness.LogLine,
                                       readiness.PidFile, readiness.Notify)}
    cls = classes.get(m.group("cls"))
    if cls is None:
        return None
    params = [name for name, p in inspect.signature(cls).parameters.items()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    word = m.group("kw")
    hint = did_you_mean(word, params) or f" (its parameters: {', '.join(params)})"
    return f"{cls.__name__}() has no parameter {word!r}{hint}"


def _write_stderr(text: str) -> None:
    with suppress(OSError):
        os.write(2, text.encode(errors="replace"))


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    _state.expired_ticks += 1
    if _state.expired_ticks == 1:
        raise _Expired()
    if _state.expired_ticks > GRACE_SECONDS:
        # The model caught the timeout and went on: end it the hard way.
        where = _state.file or "the model"
        if frame is not None and not _is_library(os.path.abspath(frame.f_code.co_filename)):
            where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        _write_stderr(f"procmgmt: error: {where}: evaluating the model failed: did not finish "
                      f"within {_state.timeout:g} s and ignored being stopped; the time limit "
                      f"is set with {TIMEOUT_HINT}\n")
        _REAL_EXIT(_EXIT_MODEL_ERROR)


def _on_interrupt(signum: int, frame: FrameType | None) -> None:
    _state.interrupted = True
    raise KeyboardInterrupt


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Everything written to stdout while user code runs lands on stderr."""
    saved_out, saved_err = sys.stdout, sys.stderr
    with suppress(OSError, ValueError, AttributeError):
        saved_out.flush()
    saved_fd: int | None
    try:
        saved_fd = os.dup(1)
    except OSError:
        saved_fd = None  # no stdout at all: nothing to protect
    if saved_fd is not None:
        try:
            os.dup2(2, 1)
        except OSError:
            os.close(saved_fd)
            saved_fd = None
    sys.stdout = saved_err
    try:
        yield
    finally:
        # sys.__stdout__ too (and the stdout we saved, usually the same): what user
        # code wrote there sits in its buffer (block-buffered on a pipe unless
        # PYTHONUNBUFFERED) and must reach fd 1 while fd 1 is still stderr.
        for stream in (sys.stdout, sys.stderr, saved_err, saved_out, sys.__stdout__):
            with suppress(BaseException):
                stream.flush()  # type: ignore[union-attr]
        sys.stdout, sys.stderr = saved_out, saved_err
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


@contextmanager
def _exit_raises() -> Iterator[None]:
    """``os._exit`` raises in this process and thread while user code runs."""
    real = _REAL_EXIT
    pid, thread = os.getpid(), threading.get_ident()

    def stand_in(status: int) -> None:
        if os.getpid() != pid or threading.get_ident() != thread:
            real(status)
        raise _Exited(status)

    setattr(os, "_exit", stand_in)  # noqa: B010 - mypy: os._exit is not assignable
    setattr(posix, "_exit", stand_in)  # noqa: B010
    try:
        yield
    finally:
        setattr(os, "_exit", real)  # noqa: B010
        setattr(posix, "_exit", real)  # noqa: B010


@contextmanager
def _signals(timeout: float | None) -> Iterator[bool]:
    """Time limit and Ctrl-C recording; yields whether Ctrl-C is being recorded."""
    if threading.current_thread() is not threading.main_thread():
        yield False  # signals can only be handled in the main thread
        return
    old_alarm = old_int = None
    old_timer = (0.0, 0.0)
    if timeout is not None and math.isfinite(timeout) and timeout > 0:
        old_alarm = signal.signal(signal.SIGALRM, _on_alarm)
        old_timer = signal.setitimer(signal.ITIMER_REAL, timeout, 1.0)
    recording = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if recording:
        old_int = signal.signal(signal.SIGINT, _on_interrupt)
    try:
        yield recording
    finally:
        if old_alarm is not None:
            signal.setitimer(signal.ITIMER_REAL, *old_timer)
            signal.signal(signal.SIGALRM, old_alarm)
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)


@contextmanager
def user_code(file: str | None, timeout: float | None, what: str = "evaluating the model",
              blame_file: bool = True) -> Iterator[None]:
    """Run the body as user code (see the module docstring).

    Every exception it raises becomes :class:`UserCodeError` at the user's
    innermost frame, except procmgmt's own errors (they already say what is
    wrong) and a real Ctrl-C. An exception without a user frame is blamed on
    ``file`` when ``blame_file`` is true, else re-raised as it is (a bug in
    procmgmt must not pose as the user's mistake).
    """
    if _state.depth:
        yield  # already contained by an outer call
        return
    _state.depth += 1
    _state.interrupted = False
    _state.expired_ticks = 0
    _state.timeout, _state.file = timeout, file
    recording = False
    try:
        with _stdout_to_stderr(), _exit_raises(), _signals(timeout) as recording:
            yield
    except ProcmgmtError:
        raise
    except BaseException as exc:
        if (_state.interrupted or not recording) and caused_by_interrupt(exc):
            # A real Ctrl-C, also one Python wrapped on its way out (an interrupt
            # inside a class body's __set_name__ comes out as RuntimeError in 3.11).
            # A KeyboardInterrupt the model raised itself is its error, converted.
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise KeyboardInterrupt from exc
        if isinstance(exc, Exception) and not blame_file \
                and user_frame(exc.__traceback__, file) is None:
            raise
        raise _converted(exc, file, what, timeout) from None
    finally:
        _state.depth -= 1


def _converted(exc: BaseException, file: str | None, what: str,
               timeout: float | None) -> UserCodeError:
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        # A helper module the model imports (constructors.py) does not parse.
        return UserCodeError(exc.filename, exc.lineno, "", f"syntax error: {exc.msg}")
    where = user_frame(exc.__traceback__, file)
    if where is None:
        return UserCodeError(file, None, what, _reason(exc, timeout))
    return UserCodeError(where[0], where[1], what, _reason(exc, timeout))
