"""Whether an exception is the echo of a Ctrl-C.

Python does not always let a ``KeyboardInterrupt`` through as it is: in
3.11 an interrupt that lands in a class body's ``__set_name__`` (every
``dataclass`` field has one) comes out as ``RuntimeError: Error calling
__set_name__ ...`` with the interrupt as its cause, and code that catches
the interrupt to clean up may raise something else while doing so. Such an
exception is an interruption, not a bug of procmgmt nor of the user's
model: the places that report exceptions ask this module first.

Imported before anything else by ``python -m procmgmt``: it imports nothing.
"""

from __future__ import annotations


def caused_by_interrupt(exc: BaseException) -> bool:
    """True if ``exc`` is a ``KeyboardInterrupt`` or was raised because of one
    (anywhere in its chain of causes and contexts)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt):
            return True
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
    return False
