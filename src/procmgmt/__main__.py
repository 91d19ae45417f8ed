"""``python -m procmgmt`` and the ``procmgmt`` console script.

Nothing is imported before the interrupt handling is in place: a Ctrl-C
while the command line is still loading ends with "interrupted" and exit
status 130, never with a traceback.
"""

from __future__ import annotations

import sys


def run() -> int:
    """Import the command line and run it; an interrupt at any moment exits 130,
    also when Python wrapped it in another exception (see :mod:`procmgmt.interrupts`)."""
    try:
        from procmgmt.cli.main import main

        return main()
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:
        try:
            from procmgmt.interrupts import caused_by_interrupt

            wrapped = caused_by_interrupt(exc)
        except KeyboardInterrupt:
            return _interrupted()
        if not wrapped:
            raise
        return _interrupted()


def _interrupted() -> int:
    try:
        sys.stderr.write("procmgmt: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError, KeyboardInterrupt):
        pass
    return 130


if __name__ == "__main__":
    raise SystemExit(run())
