"""Load a processes model: a Python file defining ``processes(settings)``.

The function returns a mapping from instance name to :class:`Instance` (or
to a bare :class:`Process`). Mistakes in the file (syntax errors, a
constructor that raises, an unknown keyword, ``sys.exit``, a hang) become
:class:`ModelLoadError` naming the user's file and line, never a traceback:
evaluation runs contained (:mod:`procmgmt.model.contain`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import CodeType, ModuleType

from procmgmt.errors import ModelLoadError
from procmgmt.model.contain import user_code
from procmgmt.model.process import Instance, Process
from procmgmt.settings import Settings

MODEL_FUNCTION = "processes"
_counter = 0


@dataclass
class Model:
    """An evaluated processes model."""

    file: str | None
    instances: dict[str, Instance] = field(default_factory=dict)

    def processes(self) -> dict[str, Process]:
        """Instance name -> process."""
        return {name: inst.process for name, inst in self.instances.items()}


def empty_model() -> Model:
    """The model of an undeploy: no process at all."""
    return Model(file=None, instances={})


def _read_source(path: str, shown: str) -> bytes:
    """The model's bytes, from a regular file only: a FIFO or a device would block
    (or never end) before the time limit even starts."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ModelLoadError(f"{shown}: cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ModelLoadError(f"{shown}: is not a regular file ({_kind(info.st_mode)}); "
                                 "give the path of a Python file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a plain file"


def _module(path: str) -> ModuleType:
    global _counter
    _counter += 1
    spec = importlib.util.spec_from_file_location(f"procmgmt_model_{_counter}", path)
    if spec is None:
        raise ModelLoadError(f"{path}: cannot be loaded as a Python file")
    return importlib.util.module_from_spec(spec)


def load_model(path: str, settings: Settings) -> Model:
    """Evaluate the model file at ``path`` with ``settings``."""
    model_file = os.path.abspath(path)
    if not os.path.exists(model_file):
        raise ModelLoadError(f"{path}: no such model file")
    if os.path.isdir(model_file):
        candidate = os.path.join(model_file, "processes.py")
        if not os.path.exists(candidate):
            raise ModelLoadError(f"{path}: is a directory without a processes.py")
        model_file = candidate
    if not os.access(model_file, os.R_OK):
        raise ModelLoadError(f"{path}: not readable")
    source = _read_source(model_file, path)
    try:
        code = compile(source, model_file, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"{exc.filename or model_file}:{exc.lineno}" if exc.lineno else model_file
        raise ModelLoadError(f"{where}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # NUL bytes in the source (Python < 3.12)
        raise ModelLoadError(f"{model_file}: syntax error: {exc}") from None

    model_dir = os.path.dirname(model_file)
    before = set(sys.modules)
    sys.path.insert(0, model_dir)
    try:
        with user_code(model_file, settings.model_timeout):
            instances = _evaluate(code, model_file, settings)
    finally:
        with contextlib.suppress(ValueError):  # unless the model removed it itself
            sys.path.remove(model_dir)
        # Forget helper modules next to the model (constructors.py ...) so a
        # later model with a same-named sibling gets its own.
        for name in set(sys.modules) - before:
            mod_file = getattr(sys.modules[name], "__file__", None) or ""
            if os.path.abspath(mod_file).startswith(model_dir + os.sep):
                del sys.modules[name]
    return Model(file=model_file, instances=instances)


def _evaluate(code: CodeType, model_file: str, settings: Settings) -> dict[str, Instance]:
    """Run the compiled model and check what ``processes()`` returned (user code: the
    mapping it returns may be anything with an ``items`` that does anything)."""
    module = _module(model_file)
    exec(code, module.__dict__)
    func = getattr(module, MODEL_FUNCTION, None)
    if not callable(func):
        raise ModelLoadError(
            f"{model_file}: defines no function '{MODEL_FUNCTION}(settings)' "
            "returning a mapping of instance names to instances"
        )
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        params = None
    result = func(settings) if params or params is None else func()
    if not isinstance(result, Mapping):
        raise ModelLoadError(
            f"{model_file}: {MODEL_FUNCTION}() returned {type(result).__name__}, "
            "expected a dict of instance name -> Instance"
        )
    instances: dict[str, Instance] = {}
    for key, value in result.items():
        if isinstance(value, Process):
            inst = Instance(value)
            inst.origin = value.origin
            instances[str(key)] = inst
        elif isinstance(value, Instance):
            instances[str(key)] = value
        else:
            raise ModelLoadError(
                f"{model_file}: instance {key!r} is a {type(value).__name__}, "
                "expected Instance(process, ...) or a Process"
            )
        if not isinstance(key, str):
            raise ModelLoadError(f"{model_file}: instance name {key!r} must be a string")
    return instances
