"""Load a function from a user's Python file (infrastructure, distribution).

The same containment as the processes model (:mod:`procmgmt.model.contain`):
a syntax error, an exception or a hang in the file becomes a located
:class:`~procmgmt.errors.ModelLoadError`, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from procmgmt.errors import ModelLoadError
from procmgmt.model.contain import user_code

_counter = 0


def load_function(path: str, name: str, kind: str, timeout: float | None) -> Callable[..., Any]:
    """The function ``name`` defined by the file at ``path`` (a ``kind`` model)."""
    global _counter
    shown = path
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ModelLoadError(f"{shown}: no such {kind} file")
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise ModelLoadError(f"{shown}: cannot be read: {exc.strerror}") from None
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        raise ModelLoadError(f"{path}{f':{line}' if line else ''}: syntax error: "
                             f"{getattr(exc, 'msg', exc)}") from None
    _counter += 1
    namespace: dict[str, Any] = {"__name__": f"procmgmt_{kind}_{_counter}", "__file__": path}
    with user_code(path, timeout, f"loading the {kind} model"), _beside(path):
        exec(code, namespace)
    func = namespace.get(name)
    if not callable(func):
        raise ModelLoadError(f"{path}: defines no function '{name}(...)' ({kind} model)")
    return func  # type: ignore[no-any-return]


def call(func: Callable[..., Any], path: str, kind: str, timeout: float | None,
         *args: Any) -> Any:
    """Call a function of a user's file, contained."""
    with user_code(os.path.abspath(path), timeout, f"evaluating the {kind} model"), \
            _beside(path):
        return func(*args)


@contextmanager
def _beside(path: str) -> Iterator[None]:
    """Modules next to the file are importable while it runs, as for a processes model."""
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
