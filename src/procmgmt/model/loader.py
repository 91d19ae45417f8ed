"""Load a processes model: a Python file defining ``processes(settings)``.

The function returns a mapping from instance name to :class:`Instance` (or
to a bare :class:`Process`). Mistakes in the file (syntax errors, a
constructor that raises, an unknown keyword) become :class:`ModelLoadError`
naming the user's file and line, never a traceback.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType

from procmgmt.errors import ModelLoadError
from procmgmt.model.process import Instance, Process
from procmgmt.settings import Settings

MODEL_FUNCTION = "processes"
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


def _user_frame(tb: traceback.StackSummary, model_file: str) -> traceback.FrameSummary | None:
    """Innermost frame in user code (prefer the model file, else any non-procmgmt file)."""
    best = None
    for frame in tb:
        fn = os.path.abspath(frame.filename)
        in_user_code = not fn.startswith(_PACKAGE_DIR) and not frame.filename.startswith("<")
        if fn == model_file or in_user_code:
            best = frame
    return best


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _import_file(path: str) -> ModuleType:
    global _counter
    _counter += 1
    name = f"procmgmt_model_{_counter}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{path}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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

    model_dir = os.path.dirname(model_file)
    before = set(sys.modules)
    sys.path.insert(0, model_dir)
    try:
        try:
            module = _import_file(model_file)
            func = getattr(module, MODEL_FUNCTION, None)
            if not callable(func):
                raise ModelLoadError(
                    f"{model_file}: defines no function '{MODEL_FUNCTION}(settings)' "
                    "returning a mapping of instance names to instances"
                )
            params = inspect.signature(func).parameters
            result = func(settings) if params else func()
        except ModelLoadError:
            raise
        except SyntaxError as exc:
            where = f"{exc.filename or model_file}:{exc.lineno}" if exc.lineno else model_file
            raise ModelLoadError(f"{where}: syntax error: {exc.msg}") from None
        except Exception as exc:
            frame = _user_frame(traceback.extract_tb(exc.__traceback__), model_file)
            where = f"{frame.filename}:{frame.lineno}" if frame else model_file
            raise ModelLoadError(
                f"{where}: evaluating the model failed: {_describe(exc)}"
            ) from None
    finally:
        sys.path.remove(model_dir)
        # Forget helper modules next to the model (constructors.py ...) so a
        # later model with a same-named sibling gets its own.
        for name in set(sys.modules) - before:
            mod_file = getattr(sys.modules[name], "__file__", None) or ""
            if os.path.abspath(mod_file).startswith(model_dir + os.sep):
                del sys.modules[name]

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
    return Model(file=model_file, instances=instances)
